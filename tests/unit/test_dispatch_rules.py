"""Split and dispatch rules on plain data: `make_plan`, the distance fallback,
and `split`. No database."""
from __future__ import annotations

import datetime as dt

import pytest

from app.fulfilment.dispatch import Candidate, make_plan
from app.fulfilment.geo import SAME_CITY_KM, SAME_PROVINCE_KM, Place, distance, haversine_km
from app.fulfilment.split import split
from app.models import Order, OrderLine

A, B, C, D, E, F = 1, 2, 3, 4, 5, 6  # sku ids


def node(code: str, km: float, stock: dict[int, int], capacity: int = 100) -> Candidate:
    return Candidate(node_id=hash(code) & 0xFFFF, code=code, km=km, basis="coordinates", capacity_left=capacity,
                     stock={sku: (hash((code, sku)) & 0xFFFFFF, units) for sku, units in stock.items()})


def placed(plan) -> dict[str, dict[int, int]]:
    return {a.candidate.code: a.lines for a in plan.assignments}


def assert_plan_is_whole(plan, lines: dict[int, int]) -> None:
    """Every unit requested is either assigned or unplaced, and no node is
    asked for more than it has."""
    total: dict[int, int] = {}
    for a in plan.assignments:
        for sku, q in a.lines.items():
            assert 0 < q <= a.candidate.units(sku)
            total[sku] = total.get(sku, 0) + q
    for sku, q in plan.unplaced.items():
        total[sku] = total.get(sku, 0) + q
    assert total == lines


# --- one node, fewest nodes, nearest --------------------------------------------------

def test_prefers_one_node_that_ships_the_whole_order():
    lines = {A: 2, B: 1}
    near_a, near_b = node("NEAR-A", 2, {A: 5}), node("NEAR-B", 3, {B: 5})
    far_whole = node("FAR", 170, {A: 2, B: 1})
    plan = make_plan(lines, [near_a, near_b, far_whole])
    assert plan.rule == "single_node"
    assert placed(plan) == {"FAR": {A: 2, B: 1}}
    assert plan.unplaced == {}


def test_among_nodes_that_ship_everything_the_nearest_wins():
    lines = {A: 1}
    plan = make_plan(lines, [node("FAR", 30, {A: 9}), node("NEAR", 3, {A: 1}), node("MID", 10, {A: 9})])
    assert placed(plan) == {"NEAR": {A: 1}}


def test_equal_distances_are_broken_by_node_code_so_plans_are_repeatable():
    plan = make_plan({A: 1}, [node("N-2", 5, {A: 1}), node("N-1", 5, {A: 1})])
    assert placed(plan) == {"N-1": {A: 1}}


def test_a_node_short_of_one_unit_does_not_ship_the_whole_order():
    plan = make_plan({A: 3}, [node("NEAR", 1, {A: 2}), node("FAR", 50, {A: 3})])
    assert placed(plan) == {"FAR": {A: 3}}


def test_without_one_node_uses_the_fewest_nodes_not_the_nearest_ones():
    lines = {A: 1, B: 1, C: 1}
    near = [node("NEAR-A", 1, {A: 1}), node("NEAR-B", 1, {B: 1}), node("NEAR-C", 1, {C: 1})]
    far_ab = node("FAR-AB", 100, {A: 1, B: 1})
    plan = make_plan(lines, near + [far_ab])
    assert plan.rule == "fewest_nodes"
    # Two nodes, not the three nearest; the nearest partner completes the pair.
    assert placed(plan) == {"NEAR-C": {C: 1}, "FAR-AB": {A: 1, B: 1}}


def test_finds_the_covering_pair_exactly_where_taking_the_biggest_node_first_needs_three():
    # X covers the most lines, and is nearest; but only P + Q cover all six.
    lines = {A: 1, B: 1, C: 1, D: 1, E: 1, F: 1}
    x = node("X", 1, {A: 1, B: 1, D: 1, E: 1})
    p = node("P", 20, {A: 1, B: 1, C: 1})
    q = node("Q", 20, {D: 1, E: 1, F: 1})
    plan = make_plan(lines, [x, p, q])
    assert sorted(placed(plan)) == ["P", "Q"]
    assert_plan_is_whole(plan, lines)
    assert plan.unplaced == {}


def test_a_line_no_node_holds_in_full_is_shared_by_a_pair():
    lines = {A: 5}
    plan = make_plan(lines, [node("N1", 5, {A: 3}), node("N2", 9, {A: 2}), node("N3", 1, {A: 1})])
    assert placed(plan) == {"N1": {A: 3}, "N2": {A: 2}}
    assert_plan_is_whole(plan, lines)


def test_among_covering_pairs_the_nearer_pair_wins_and_the_nearer_node_ships_most():
    lines = {A: 2, B: 2}
    plan = make_plan(lines, [
        node("FAR-A", 80, {A: 2}), node("FAR-B", 90, {B: 2}),
        node("NEAR-A", 4, {A: 2, B: 1}), node("NEAR-B", 6, {B: 2}),
    ])
    assert placed(plan) == {"NEAR-A": {A: 2, B: 1}, "NEAR-B": {B: 1}}


def test_three_nodes_when_no_pair_covers_the_order():
    lines = {A: 1, B: 1, C: 1}
    plan = make_plan(lines, [node("NA", 1, {A: 1}), node("NB", 2, {B: 1}), node("NC", 3, {C: 1}),
                             node("EMPTY", 0, {})])
    assert plan.rule == "fewest_nodes"
    assert sorted(placed(plan)) == ["NA", "NB", "NC"]
    assert plan.unplaced == {}


def test_when_more_than_two_nodes_are_needed_the_nearer_ones_ship_what_they_can():
    lines = {A: 2, B: 1, C: 9}
    # FAR covers two lines in full, so it is chosen first; NEAR is needed for
    # C anyway and also holds A: NEAR ships A, not the far node.
    plan = make_plan(lines, [node("FAR", 170, {A: 3, B: 4}), node("NEAR", 3, {A: 10, C: 5})])
    assert placed(plan) == {"NEAR": {A: 2, C: 5}, "FAR": {B: 1}}
    assert plan.unplaced == {C: 4}


def test_what_no_node_holds_is_left_unplaced():
    lines = {A: 4, B: 1}
    plan = make_plan(lines, [node("N1", 1, {A: 1}), node("N2", 2, {A: 2})])
    assert_plan_is_whole(plan, lines)
    assert plan.unplaced == {A: 1, B: 1}
    assert sorted(placed(plan)) == ["N1", "N2"]


def test_no_stock_anywhere_places_nothing():
    plan = make_plan({A: 1}, [node("N1", 1, {B: 5})])
    assert plan.rule == "no_stock"
    assert plan.assignments == []
    assert plan.unplaced == {A: 1}


# --- capacity -------------------------------------------------------------------------

def test_skips_a_node_whose_capacity_for_today_is_used_up():
    plan = make_plan({A: 1}, [node("FULL", 1, {A: 5}, capacity=0), node("OPEN", 50, {A: 5}, capacity=1)])
    assert placed(plan) == {"OPEN": {A: 1}}


def test_a_full_node_is_not_part_of_a_pair_either():
    lines = {A: 1, B: 1}
    plan = make_plan(lines, [node("HAS-A", 1, {A: 1}), node("FULL-B", 1, {B: 1}, capacity=0),
                             node("FAR-B", 60, {B: 1})])
    assert placed(plan) == {"HAS-A": {A: 1}, "FAR-B": {B: 1}}


def test_when_every_holder_is_full_nothing_is_placed():
    plan = make_plan({A: 1}, [node("FULL", 1, {A: 5}, capacity=0)])
    assert plan.assignments == [] and plan.unplaced == {A: 1}


# --- distance -------------------------------------------------------------------------

def test_measures_coordinates_by_great_circle():
    # 上海人民广场 to 杭州西湖: about 165 km as the crow flies.
    km, basis = distance(Place("上海市", "上海市", 31.2304, 121.4737), Place("浙江省", "杭州市", 30.2431, 120.1500))
    assert basis == "coordinates"
    assert 160 < km < 170
    assert haversine_km(31.0, 121.0, 31.0, 121.0) == 0


def test_without_coordinates_falls_back_to_the_same_city():
    km, basis = distance(Place("上海市", "上海市", 31.2, 121.5), Place("上海市", "上海市"))
    assert (km, basis) == (SAME_CITY_KM, "city")


def test_then_to_the_same_province():
    km, basis = distance(Place("浙江省", "杭州市"), Place("浙江省", "宁波市", 29.87, 121.55))
    assert (km, basis) == (SAME_PROVINCE_KM, "province")


def test_a_city_of_the_same_name_in_another_province_is_not_the_same_city():
    km, basis = distance(Place("吉林省", "吉林市"), Place("辽宁省", "吉林市"))
    assert basis == "none" and km > SAME_PROVINCE_KM


def test_a_node_known_to_be_in_the_city_beats_one_in_another_province():
    near_km, _ = distance(Place("上海市", "上海市"), Place("上海市", "上海市"))
    far_km, _ = distance(Place("浙江省", "杭州市"), Place("上海市", "上海市"))
    assert near_km < far_km


# --- split ----------------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.timezone.utc)


def order_with(*lines: tuple[int, int, dt.datetime | None]) -> Order:
    return Order(lines=[OrderLine(line_no=i + 1, sku_id=sku, quantity=q, presale_release_at=release)
                        for i, (sku, q, release) in enumerate(lines)])


def test_lines_for_sale_now_form_one_part():
    parts = split(order_with((A, 1, None), (B, 2, None)), NOW)
    assert [(p.release_at, p.lines) for p in parts] == [(None, {A: 1, B: 2})]


def test_duplicate_sku_lines_are_added_together():
    parts = split(order_with((A, 1, None), (B, 2, None), (A, 3, None)), NOW)
    assert [p.lines for p in parts] == [{A: 4, B: 2}]


def test_presale_lines_get_their_own_part_per_release_time():
    dec1 = NOW + dt.timedelta(days=7)
    dec9 = NOW + dt.timedelta(days=15)
    parts = split(order_with((A, 1, dec9), (B, 1, None), (C, 2, dec1), (D, 1, dec1), (C, 1, dec1)), NOW)
    assert [(p.release_at, p.lines) for p in parts] == [(None, {B: 1}), (dec1, {C: 3, D: 1}), (dec9, {A: 1})]


def test_a_presale_line_already_released_ships_with_the_rest():
    parts = split(order_with((A, 1, NOW - dt.timedelta(hours=1)), (A, 2, None), (B, 1, NOW)), NOW)
    assert [(p.release_at, p.lines) for p in parts] == [(None, {A: 3, B: 1})]


@pytest.mark.parametrize("lines", [{A: 1}, {A: 7, B: 3, C: 1}])
def test_a_plan_never_asks_a_node_for_more_than_it_has(lines):
    candidates = [node("N1", 1, {A: 2, B: 1}), node("N2", 2, {A: 3, C: 1}), node("N3", 3, {B: 5, A: 1})]
    assert_plan_is_whole(make_plan(lines, candidates), lines)
