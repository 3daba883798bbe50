import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from elasticnas.data import IMAGENET_MEAN, IMAGENET_STD, DataError, ImageFolder, as_loader, eval_transform, resize_batch


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls, n in (("cat", 3), ("ant", 2), ("dog", 1)):
        for i in range(n):
            _save(tmp_path / cls / f"{i}.png", rng.integers(0, 256, (40 + 7 * i, 50, 3)))
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    _save(tmp_path / "dog" / "nested" / "deep.jpg", rng.integers(0, 256, (30, 30, 3)))
    return tmp_path


@pytest.mark.parametrize("resolution", [16, 32])
def test_imagefolder_layout_labels_and_shapes(folder, resolution):
    ds = ImageFolder(folder, resolution)
    assert ds.classes == ["ant", "cat", "dog"]
    assert len(ds) == 7  # text file skipped, nested image found
    labels = [label for _, label in ds.samples]
    assert labels == [0, 0, 1, 1, 1, 2, 2]
    x, y = ds[3]
    assert x.shape == (3, resolution, resolution) and x.dtype == torch.float32 and y == 1


def test_uniform_image_normalises_to_known_values():
    image = Image.new("RGB", (64, 48), (255, 0, 128))
    x = eval_transform(image, 24)
    expected = (np.array([255, 0, 128]) / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    for c in range(3):
        assert torch.allclose(x[c], torch.full((24, 24), float(expected[c])), atol=1e-5)


def test_resize_then_centre_crop_keeps_the_centre():
    # wide image: left third red, middle third green, right third blue; the centre crop is green only
    a = np.zeros((100, 300, 3), np.uint8)
    a[:, :100, 0] = 255
    a[:, 100:200, 1] = 255
    a[:, 200:, 2] = 255
    x = eval_transform(Image.fromarray(a), 28, mean=(0, 0, 0), std=(1, 1, 1))
    assert x.shape == (3, 28, 28)
    # shorter side resized to ceil(28 / 0.875) = 32 -> width 96; crop columns 34..62 lie in the green third
    assert x[1].min() > 0.95 and x[0].max() < 0.05 and x[2].max() < 0.05


def test_grayscale_images_become_rgb(tmp_path):
    _save(tmp_path / "a" / "g.png", np.full((20, 20), 200))
    x, _ = ImageFolder(tmp_path, 8)[0]
    assert x.shape == (3, 8, 8)


def test_one_channel_decoding(tmp_path):
    _save(tmp_path / "a" / "c.png", np.full((20, 30, 3), 255))
    x, _ = ImageFolder(tmp_path, 8, channels=1, mean=(0.5,), std=(0.25,))[0]
    assert x.shape == (1, 8, 8) and torch.allclose(x, torch.full((1, 8, 8), 2.0))
    with pytest.raises(DataError, match="1 or 3 channels"):
        ImageFolder(tmp_path, 8, channels=2)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: p, "no class sub-folders"),
        (lambda p: (p / "empty_class").mkdir() or p, "holds no images"),
    ],
)
def test_bad_folders_are_one_line_errors(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        ImageFolder(make(tmp_path), 8)


def test_corrupt_image_is_a_clear_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="cannot decode image"):
        ImageFolder(tmp_path, 8)[0]


def test_as_loader_accepts_every_source(folder):
    x, y = torch.randn(10, 3, 8, 8), torch.arange(10)
    loaders = [
        as_loader((x, y), batch_size=4),
        as_loader((x.numpy(), y.numpy()), batch_size=4),
        as_loader(TensorDataset(x, y), batch_size=4),
    ]
    for loader in loaders:
        batches = list(loader)
        assert [len(b[0]) for b in batches] == [4, 4, 2]
        assert torch.equal(torch.cat([b[1] for b in batches]), y)
    dl = DataLoader(TensorDataset(x, y), batch_size=3)
    assert as_loader(dl) is dl
    img = list(as_loader(str(folder), batch_size=5, resolution=12))
    assert img[0][0].shape == (5, 3, 12, 12) and len(img) == 2


def test_shuffling_is_seeded():
    data = (torch.arange(50).float()[:, None], torch.arange(50))
    order = lambda seed: torch.cat([b[1] for b in as_loader(data, batch_size=7, shuffle=True, seed=seed)])  # noqa: E731
    assert torch.equal(order(1), order(1))
    assert not torch.equal(order(1), order(2))


@pytest.mark.parametrize(
    "data, kwargs, message",
    [
        ("some/dir", {}, "resolution"),
        (42, {}, "cannot load data"),
        ((torch.zeros(3, 2), torch.zeros(4)), {}, "differ in length"),
        ((torch.zeros(3, 2), torch.zeros(3)), {"batch_size": 0}, "batch size"),
    ],
)
def test_as_loader_errors(data, kwargs, message):
    with pytest.raises(DataError, match=message):
        as_loader(data, **kwargs)


def test_resize_batch():
    x = torch.randn(2, 3, 8, 8)
    assert resize_batch(x, 8) is x and resize_batch(x, None) is x
    assert resize_batch(x, 12).shape == (2, 3, 12, 12)


def test_grey_image_tensors_become_rgb_for_an_rgb_network_and_other_mismatches_are_refused():
    from elasticnas.data import DataError, as_loader

    x, y = torch.rand(4, 1, 8, 8), torch.arange(4)
    (rgb, _), = list(as_loader((x, y), batch_size=4, channels=3))
    assert rgb.shape == (4, 3, 8, 8) and all(torch.equal(rgb[:, c], x[:, 0]) for c in range(3))
    (same, _), = list(as_loader((x, y), batch_size=4))
    assert torch.equal(same, x)  # no channels asked for: as given
    with pytest.raises(DataError, match="the images have 1 channels; the network takes 2"):
        as_loader((x, y), channels=2)


def test_the_readme_export_example_runs(tmp_path, monkeypatch):
    """An RGB super-network exported with the built-in grey digits as calibration and validation data."""
    import elasticnas as en

    monkeypatch.chdir(tmp_path)
    net = en.create_supernet("ofa_mbv3_w10")
    cfg = net.min_config()  # the README samples one; the smallest keeps the test quick
    record = en.export_subnet(net, cfg, format="onnx", path="sub.onnx", calibration_data="digits:calib",
                              val_data="digits:val")  # fmt: skip
    assert record.max_abs_diff <= record.atol and record.accuracy_top1 is not None
