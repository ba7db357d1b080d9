"""The SVG drawing on its own: rows follow dependencies, texts are escaped, labels never cover each other."""

from __future__ import annotations

import re

from django_etl.lineage.graph import Edge, Node, Picture, render, rows_of


def diamond() -> Picture:
    picture = Picture()
    for key in ("extract", "left", "right", "join"):
        picture.add(Node(key=key, title=key, status="success"))
    picture.edges += [
        Edge("extract", "left", "filtered · orders"),
        Edge("extract", "right", "derived · orders"),
        Edge("left", "join", "derived · paid"),
        Edge("right", "join", "derived · big"),
    ]
    return picture


def test_graph_rows_follow_dependencies():
    assert [[n.key for n in row] for row in rows_of(diamond())] == [["extract"], ["left", "right"], ["join"]]


def test_graph_escapes_every_text():
    picture = Picture()
    picture.add(Node(key="a", title="<script>alert(1)</script>", subtitle='" onload="x', status="failed"))
    picture.add(Node(key="b", title="b", href='/x?a=1&b="2"'))
    picture.edges.append(Edge("a", "b", "<b>label</b>"))
    svg = str(render(picture, "<caption>"))
    assert "<script>" not in svg and "<b>" not in svg and '" onload="' not in svg
    assert "&lt;script&gt;" in svg and "&lt;caption&gt;" in svg and 'href="/x?a=1&amp;b=&quot;2&quot;"' in svg


def test_graph_labels_of_arrows_into_one_box_do_not_overlap():
    svg = str(render(diamond(), "diamond"))
    boxes = [
        (float(x), float(y), float(w))
        for x, y, w in re.findall(r'<rect x="([\d.-]+)" y="([\d.-]+)" width="([\d.]+)" height="18"', svg)
    ]
    assert len(boxes) == 4
    for index, (x, y, w) in enumerate(boxes):
        for x2, y2, w2 in boxes[index + 1 :]:
            assert abs(y - y2) >= 18 or x + w <= x2 or x2 + w2 <= x, (boxes, index)


def test_graph_of_nothing_says_so():
    assert "Nothing to draw" in str(render(Picture(), "empty"))
