"""Krita plugin: keypoint marker naming, pairing and points -> pixels, without Krita."""
import xml.etree.ElementTree as ET

from krita_plugin_support import PLUGIN_DIR  # noqa: F401

from impasto_krita import markers
from impasto_krita.pixels import Rect


def test_marker_numbers_from_names():
    for name, n in [("kp3", 3), ("KP 12", 12), ("3", 3), ("#7", 7), ("marker 2", 2), ("keypoint-5", 5),
                    ("k9", 9)]:
        assert markers.marker_number(name) == n, name
    for name in ("kp3 label", "ring", "", "kp", "layer 2 copy"):
        assert markers.marker_number(name) is None, name


def test_points_to_pixels_uses_document_resolution():
    assert markers.pt_to_px(72, 72) == 72
    assert markers.pt_to_px(36, 300) == 150
    assert markers.px_to_pt(markers.pt_to_px(17.5, 144), 144) == 17.5


def test_read_markers_centres_and_origin():
    # a ring of 10x10 pt at (20, 30) at 144 ppi: centre (25, 35) pt = (50, 70) px; crop origin (10, 20)
    shapes = [("kp1", (20.0, 30.0, 10.0, 10.0)), ("kp1 label", (0, 0, 5, 5)), ("kp2", (0.0, 0.0, 2.0, 2.0)),
              ("kp2", (5.0, 5.0, 2.0, 2.0))]
    got = markers.read_markers(shapes, 144, origin=(10, 20))
    assert got.points[1] == (40.0, 50.0)
    assert got.points[2] == (2.0 - 10, 2.0 - 20)
    assert got.ignored == ["kp1 label"] and got.duplicates == [2]


def test_pairing_by_number_reports_unmatched():
    c = markers.MarkerSet(points={1: (1.0, 2.0), 2: (3.0, 4.0), 5: (0.0, 0.0)})
    s = markers.MarkerSet(points={2: (30.0, 40.0), 1: (10.0, 20.0), 7: (9.0, 9.0)})
    p = markers.pair_markers(c, s)
    assert p.numbers == [1, 2]
    assert [(k.content, k.style) for k in p.pairs] == [((1.0, 2.0), (10.0, 20.0)), ((3.0, 4.0), (30.0, 40.0))]
    assert p.content_only == [5] and p.style_only == [7]
    assert "5" in p.warning() and "7" in p.warning()
    assert markers.pair_markers(c, c).warning() is None


def test_svg_round_trips_through_reading():
    res = 300
    svg = markers.markers_svg([(1, 100.0, 50.0), (2, 10.0, 20.0)], res, 400, 200, radius_px=8)
    root = ET.fromstring(svg)
    assert root.get("width").endswith("pt")
    shapes = []
    for el in root.iter("{http://www.w3.org/2000/svg}circle"):
        r = float(el.get("r"))
        shapes.append((el.get("id"), (float(el.get("cx")) - r, float(el.get("cy")) - r, 2 * r, 2 * r)))
    labels = [el.get("id") for el in root.iter("{http://www.w3.org/2000/svg}text")]
    assert labels == ["kp1 label", "kp2 label"]
    got = markers.read_markers(shapes, res)
    assert got.points == {1: (100.0, 50.0), 2: (10.0, 20.0)}


def test_default_positions_inside_rect_and_distinct():
    rect = Rect(10, 20, 100, 60)
    pos = markers.default_positions(rect, 12)
    assert len(set(pos)) == 12
    assert all(10 <= x <= 110 and 20 <= y <= 80 for x, y in pos)
    assert pos[0] == (35.0, 35.0)
    assert markers.next_numbers([1, 2, 5], 2) == [6, 7] and markers.next_numbers([], 3) == [1, 2, 3]
