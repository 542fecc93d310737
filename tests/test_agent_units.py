"""The agent's pure parts: the exposition formats (escaping hostile names),
the bounded culprit counters (monotonic whatever the churn of culprits), and
the CLI's address parsing. The real agent is in test_agent.py."""

from __future__ import annotations

import argparse
import itertools
import random
import socket

import pytest

from noisy_neighbor.agent.culprits import OTHER, CulpritCounters
from noisy_neighbor.agent.exposition import (
    OPENMETRICS,
    PROMETHEUS_TEXT,
    Family,
    content_type_for,
    label_set,
    render,
)
from noisy_neighbor.views.cli_args import listen_address


def test_label_values_are_escaped_and_empty_ones_left_out() -> None:
    labels = label_set([("cgroup", '/a"b\\c\nd'), ("pod", None), ("container", "")])
    assert labels == '{cgroup="/a\\"b\\\\c\\nd"}'
    assert label_set([("pod", None)]) == ""


def test_bytes_that_are_not_utf8_become_replacement_characters() -> None:
    # A cgroup directory named with a byte that is not UTF-8, as os.listdir
    # hands it over (surrogateescape): the scrape must stay valid UTF-8.
    name = b"/bad\xffname".decode("utf-8", "surrogateescape")
    text = render([_counter_with(label_set([("cgroup", name)]))]).decode("utf-8")
    assert 'cgroup="/bad\ufffdname"' in text


def _counter_with(labels: str) -> Family:
    family = Family("nn_test_waits", "counter", "Waits.")
    family.add(labels, 3)
    return family


def test_the_two_formats_name_families_as_each_wants() -> None:
    info = Family("nn_test_build", "info", "Build.")
    info.add('{version="1"}', 1)
    hist = Family("nn_test_latency_seconds", "histogram", "Latency.", unit="seconds")
    hist.add('{le="+Inf"}', 2, "_bucket")
    hist.add("", 0.5, "_sum")
    hist.add("", 2, "_count")
    families = [_counter_with(""), info, hist]
    text = render(families).decode()
    assert "# TYPE nn_test_waits_total counter\nnn_test_waits_total 3\n" in text
    assert "# TYPE nn_test_build_info gauge" in text
    assert "# UNIT" not in text and "# EOF" not in text
    om = render(families, openmetrics=True).decode()
    assert "# TYPE nn_test_waits counter\n" in om and "nn_test_waits_total 3" in om
    assert "# TYPE nn_test_build info\n" in om and 'nn_test_build_info{version="1"} 1' in om
    assert "# UNIT nn_test_latency_seconds seconds" in om
    assert om.endswith("# EOF\n")


def test_openmetrics_only_when_the_scraper_asks() -> None:
    prometheus = (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
        "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )
    assert content_type_for(prometheus) == OPENMETRICS
    assert content_type_for("text/plain") == PROMETHEUS_TEXT
    assert content_type_for(None) == PROMETHEUS_TEXT


IDLE = -100


def _feed(counters: CulpritCounters, totals: dict[int, int], now: float) -> dict[int, int]:
    counters.update(totals, now, forget_after=10.0)
    return dict(counters.counters)


def test_culprit_counters_name_at_most_k_and_count_the_rest_as_other() -> None:
    counters = CulpritCounters(2, always=frozenset({IDLE}))
    shown = _feed(counters, {1: 100, 2: 50, 3: 10, IDLE: 7}, 0.0)
    assert shown == {1: 100, 2: 50, OTHER: 10, IDLE: 7}
    shown = _feed(counters, {1: 110, 2: 60, 3: 15, IDLE: 8}, 1.0)
    assert shown == {1: 110, 2: 60, OTHER: 15, IDLE: 8}


def test_a_new_big_culprit_takes_the_place_of_the_weakest_and_nothing_goes_down() -> None:
    counters = CulpritCounters(1)
    _feed(counters, {1: 100}, 0.0)
    shown = _feed(counters, {1: 101, 2: 500}, 1.0)
    # 2 grew 500 against 1's 1: it takes the name; 1's series stays, frozen.
    assert shown == {1: 100, 2: 500, OTHER: 1}
    shown = _feed(counters, {1: 150, 2: 600}, 2.0)
    assert shown == {1: 100, 2: 600, OTHER: 50}
    shown = _feed(counters, {1: 150, 2: 700}, 12.0)  # 10 s after freezing: 1 ends
    assert shown == {2: 700, OTHER: 50}


def test_similar_culprits_do_not_swap_places_at_every_reading() -> None:
    counters = CulpritCounters(1)
    _feed(counters, {1: 100, 2: 90}, 0.0)
    shown = _feed(counters, {1: 200, 2: 190}, 1.0)  # 2 grew as much as 1, not twice
    assert shown == {1: 200, OTHER: 190}


def test_culprit_counters_are_monotonic_and_bounded_under_random_churn() -> None:
    rng = random.Random(7)
    k = 3
    counters = CulpritCounters(k, always=frozenset({IDLE}))
    totals: dict[int, int] = {}
    fresh = itertools.count(1)
    previous: dict[int, int] = {}
    for step in range(400):
        for culprit in list(totals):
            if rng.random() < 0.05:
                del totals[culprit]  # its cgroup was removed and reported
        for _ in range(rng.randrange(3)):
            totals[next(fresh)] = 0
        totals[IDLE] = totals.get(IDLE, 0)
        for culprit in totals:
            totals[culprit] += rng.randrange(0, 1000) * rng.randrange(1, 4)
        now = float(step)
        shown = _feed(counters, dict(totals), now)
        for key, value in shown.items():
            assert value >= previous.get(key, 0), (step, key)
        previous = shown
        named = set(shown) - {OTHER, IDLE}
        assert len(named) <= k + len(counters.frozen)
        assert len(counters.frozen) <= (k + 2) * 10  # frozen series end after 10 s


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9847", ("127.0.0.1", 9847)),
        ("[::1]:0", ("::1", 0)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert listen_address(text) == expected


@pytest.mark.parametrize("text", ["9847", ":9847", "host:", "host:99999", "host:-1", "host:x"])
def test_bad_listen_addresses_say_what_is_wanted(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"HOST:PORT|port"):
        listen_address(text)


def test_serve_on_a_taken_port_is_one_line_that_says_what_to_do(capsys) -> None:
    from noisy_neighbor.views.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--listen", f"127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot listen on 127.0.0.1" in err and "--listen" in err


@pytest.mark.parametrize(
    "args",
    [
        ["--listen", "nowhere"],
        ["--retain-hours", "nan"],
        ["--retain-hours", "0"],
        ["--window", "-1"],
        ["--culprits", "0"],
    ],
)
def test_serve_rejects_bad_arguments_before_loading_anything(args, capsys) -> None:
    from noisy_neighbor.views.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["serve", *args])
    assert exited.value.code == 1
    assert capsys.readouterr().err.startswith("noisy-neighbor: error:")
