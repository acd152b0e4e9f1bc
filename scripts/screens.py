"""Screenshots of the handheld screens, in Chinese and English, at 360x640.

    python scripts/screens.py            # writes docs/screens/{zh,en}/*.png

Loads the demo (`app.demo`) into a throwaway SQLite database, serves it on a
free local port, and walks Debian's chromium (Playwright) through login, a
batch pick with a wrong scan, the keypad, a short pick and the finished list,
a line whose order was cancelled and a list a lead released; then the lead's
board; then the pack bench (a wrong item, a box closed early,
the label, the parcel page, an interception) and the dock (a handover, an
intercepted parcel, the manifest) and returns at the dock (a parcel nobody
reported returned, refused; then its carrier's report: a refused label, its
items with a bin per SKU, the put-away; a customer return the lead authorised
on the order's page, received unit by unit with a disposition, and the
lead's returns page with the units held out of stock); then the lead's
live queues (tablet and phone, whole pages) and a re-dispatched fulfilment's
page; then the same-city rider at the store (pickup scan, the drop list, a
wrong code, delivered); then the cycle count (a count a lead asked for, the
bin, units scanned, the keypad, a wrong product, applied, a variance sent to
the lead) and the lead's counts page; then the database down: a scan kept
and sent again, and the page that reloads itself. Codes to scan are read
from the database, as a picker reads them off the screen.

    python scripts/screens.py --only counts   # just those walks; other shots stay
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from sqlalchemy import create_engine, select
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app, demo
from app.fulfilment import pick
from app.models import Base, PickStep, User

OUT = ROOT / "docs" / "screens"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PICKERS = {"zh": ("P001", "1111"), "en": ("P002", "2222")}
LEAD = ("L001", "5555")


class Floor:
    """What the picker's screen says to scan next, read from the database."""

    def __init__(self, app, badge: str):
        self.db = app.extensions["luyue.db"]
        self.badge = badge

    def now(self):
        with self.db.reading() as s:
            user = s.scalar(select(User).where(User.code == self.badge))
            pl = pick.held_by(s, user)
            if pl is None:
                return None
            slot = pick.next_tote_slot(pl)
            if slot is not None:
                return {"totes": True, "slot": slot.slot}
            line = pick.current_line(pl)
            if line is None:
                return None
            return {"totes": False, "step": line.step, "location": line.location.code,
                    "barcode": line.sku.barcodes[0].code if line.sku.barcodes else line.sku.code,
                    "quantity": line.quantity, "picked": line.picked, "tote": pick.slot_of(pl, line).tote}


def shoot(page, name: str, lang: str, full_page: bool = False) -> None:
    page.wait_for_timeout(250)  # let the banner's shake and the fonts settle
    path = OUT / lang / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print("wrote", path.relative_to(ROOT))


def scan(page, code: str) -> None:
    """Type a code and Enter, as a scanner does; wait for the next screen."""
    field = page.locator("[data-scan-input]")
    field.press_sequentially(code)
    if field.evaluate("input => input.form.hasAttribute('data-scan')"):
        with page.expect_response(lambda r: r.request.method == "POST"):
            field.press("Enter")
        page.wait_for_function("() => !document.querySelector('form.sending')")
        page.wait_for_timeout(60)  # htmx settles the swap
    else:
        with page.expect_navigation():
            field.press("Enter")


def pick_language(browser, base: str, app, lang: str) -> None:
    badge, pin = PICKERS[lang]
    floor = Floor(app, badge)
    context = browser.new_context(viewport={"width": 360, "height": 640}, device_scale_factor=2,
                                  locale="zh-CN" if lang == "zh" else "en-US")
    page = context.new_page()
    page.goto(base + "/login")
    shoot(page, "01-login-badge", lang)
    scan(page, badge)
    page.locator("#pin").fill(pin)
    shoot(page, "02-login-pin", lang)
    page.locator("#pin").press("Enter")
    page.wait_for_load_state("networkidle")
    shoot(page, "03-pick-home", lang)

    with page.expect_response(lambda r: r.request.method == "POST"):
        page.locator("button[name=orders][value='4']").click()
    page.wait_for_timeout(100)
    shoot(page, "04-pick-totes", lang)
    n = 1
    while (state := floor.now()) and state["totes"]:
        scan(page, f"TOTE-{lang.upper()}-{n:02d}")
        n += 1
        if n == 3 and floor.now()["totes"]:
            shoot(page, "05-pick-totes-second", lang)
    shoot(page, "06-pick-line-location", lang)
    scan(page, "Z-99-99-9")  # not a bin on this list: refused
    shoot(page, "07-pick-refused-wrong-location", lang)

    shots = {"product": False, "keypad": False, "short": False, "tote": False}
    while (state := floor.now()) is not None:
        step = state["step"]
        if step == PickStep.location:
            scan(page, state["location"])
            if not shots["product"]:
                shoot(page, "08-pick-line-product", lang)
                shots["product"] = True
            elif not shots["short"]:
                page.goto(base + "/pick/short")
                shoot(page, "11-pick-short-confirm", lang)
                with page.expect_response(lambda r: r.request.method == "POST"):
                    page.locator("form[action$='/pick/short'] button").click()
                page.wait_for_timeout(100)
                shoot(page, "12-pick-after-short", lang)
                shots["short"] = True
        elif step in (PickStep.product, PickStep.quantity):
            scan(page, state["barcode"])
            after = floor.now()
            if after and after.get("step") == PickStep.quantity and not shots["keypad"]:
                shoot(page, "09-pick-line-quantity", lang)
                page.goto(base + "/pick/quantity")
                field = page.locator("#quantity")
                field.fill("")
                for digit in str(after["quantity"]):
                    page.locator(f"[data-key='{digit}']").click()
                shoot(page, "10-pick-keypad", lang)
                with page.expect_response(lambda r: r.request.method == "POST"):
                    page.get_by_role("button", name="确认数量" if lang == "zh" else "Confirm quantity").click()
                page.wait_for_timeout(100)
                shots["keypad"] = True
            elif after and after.get("step") == PickStep.tote and not shots["tote"]:
                shoot(page, "13-pick-line-tote", lang)
                shots["tote"] = True
        elif step == PickStep.tote:
            scan(page, state["tote"])
    shoot(page, "14-pick-done", lang)
    context.close()


def pick_changed(browser, base: str, app) -> None:
    """A list that changed under the picker: the order of the line in hand is
    cancelled (the reload shows the next line and what to put back); then,
    for both pickers, a lead releases the list (the next scan says who)."""
    from app.fulfilment import pick as picking

    db = app.extensions["luyue.db"]
    held = {}
    for lang in ("zh", "en"):
        badge, pin = PICKERS[lang]
        with db.transaction() as s:
            list_ref = picking.claim_next(s, s.scalar(select(User).where(User.code == badge)), 2).ref
        floor = Floor(app, badge)
        n = 0
        # Up to a unit in hand (quantity or tote step), so there is something to put back.
        while (state := floor.now()) and (state["totes"] or state["step"] not in (PickStep.quantity, PickStep.tote)):
            n += 1
            code = (f"TOTE-{lang.upper()}-C{n:02d}" if state["totes"] else
                    state["location"] if state["step"] == PickStep.location else
                    state["barcode"] if state["step"] == PickStep.product else state["tote"])
            with db.transaction() as s:
                picking.scan(s, s.scalar(select(User).where(User.code == badge)), f"screens-{lang}-{n}", code)
            if n > 40:
                raise RuntimeError("no line with units left to pick")
        with db.reading() as s:
            pl = picking.held_by(s, s.scalar(select(User).where(User.code == badge)))
            ref = picking.slot_of(pl, picking.current_line(pl)).fulfilment.ref
        cancel_order_of(app, ref)
        context, page = log_in(browser, base, badge, pin, lang, user_language=lang)
        page.goto(base + "/pick/work")
        shoot(page, "12b-pick-order-cancelled", lang)
        held[lang] = (context, page, floor, list_ref)
    for lang, (context, page, floor, list_ref) in held.items():
        shown = floor.now()["location"]
        with db.transaction() as s:
            lead = s.scalar(select(User).where(User.code == LEAD[0]))
            picking.release(s, picking.list_for_release(s, lead, list_ref), lead)
        scan(page, shown)
        shoot(page, "12c-pick-list-released", lang)
        context.close()


def lead_board(browser, base: str, app) -> None:
    # Someone holds a list for the lead to see: the English picker claims one.
    for lang in ("zh", "en"):
        context = browser.new_context(viewport={"width": 360, "height": 640}, device_scale_factor=2,
                                      locale="zh-CN" if lang == "zh" else "en-US")
        page = context.new_page()
        page.goto(base + "/login")
        scan(page, LEAD[0])
        page.locator("#pin").fill(LEAD[1])
        page.locator("#pin").press("Enter")
        page.wait_for_load_state("networkidle")
        if lang == "en":
            page.locator("button[name=language]").click()
            page.wait_for_load_state("networkidle")
        page.goto(base + "/pick/lists")
        shoot(page, "15-lead-lists", lang)
        if lang == "en":  # leave the lead's profile as the demo had it
            page.locator("button[name=language]").click()
        context.close()


def lead_dashboard(browser, base: str, app) -> None:
    """The lead's live queues on a tablet and on a phone, and the page of a
    fulfilment that a short pick moved (dispatch reasons and lineage)."""
    from app.models import Fulfilment
    with app.extensions["luyue.db"].reading() as s:
        # Where a short pick moved units from: its page has actions, both reasons, the lineage.
        origin = s.scalar(select(Fulfilment.redispatched_from_id).where(Fulfilment.redispatched_from_id.is_not(None))
                          .order_by(Fulfilment.id).limit(1))
        moved = s.get(Fulfilment, origin).ref if origin else None
    for lang in ("zh", "en"):
        for size, suffix in (({"width": 1024, "height": 768}, "tablet"), ({"width": 360, "height": 640}, "phone")):
            context = browser.new_context(viewport=size, device_scale_factor=1 if suffix == "tablet" else 2,
                                          locale="zh-CN" if lang == "zh" else "en-US")
            page = context.new_page()
            page.goto(base + "/login")
            scan(page, LEAD[0])
            page.locator("#pin").fill(LEAD[1])
            page.locator("#pin").press("Enter")
            page.wait_for_selector("#lead-conn[data-state=connected]")
            if lang == "en":
                page.locator("button[name=language]").click()
                page.wait_for_selector("#lead-conn[data-state=connected]")
            shoot(page, f"40-lead-dashboard-{suffix}", lang, full_page=True)
            if moved:
                page.goto(f"{base}/lead/f/{moved}")
                shoot(page, f"41-lead-fulfilment-{suffix}", lang, full_page=True)
            if lang == "en":  # leave the lead's profile as the demo had it
                page.locator("button[name=language]").click()
            context.close()


# --- packing and the dock -------------------------------------------------------------

PACKER = ("B001", "3333")
DOCK = ("D001", "4444")


def picked_totes(app, badge: str, tote_prefix: str, orders: int) -> list[tuple[str, str]]:
    """A batch claimed by picker `badge` and picked through the pick domain
    (the picking screens are shot above); (tote, fulfilment ref) of each
    fulfilment picked, most units first."""
    from app.models import Fulfilment, FulfilmentStatus, PickListFulfilment

    db = app.extensions["luyue.db"]
    with db.reading() as s:
        node_id, total = s.scalar(select(User.node_id).where(User.code == badge)), demo.demo_order_count(s)
    while True:  # the walks above took most of the node's orders: top the demo up
        with db.reading() as s:
            if pick.waiting(s, node_id) >= orders:
                break
        total += 10
        demo.submit_orders(db, total)
    with db.transaction() as s:
        pick.claim_next(s, s.scalar(select(User).where(User.code == badge)), orders)
    floor, n = Floor(app, badge), 0
    while (state := floor.now()) is not None:
        n += 1
        if state["totes"]:
            code = f"{tote_prefix}-{state['slot']:02d}"
        else:
            code = {PickStep.location: state["location"], PickStep.product: state["barcode"],
                    PickStep.quantity: state["barcode"], PickStep.tote: state["tote"]}[state["step"]]
        with db.transaction() as s:
            pick.scan(s, s.scalar(select(User).where(User.code == badge)), f"shot-{tote_prefix}-{n:04d}", code)
    with db.reading() as s:
        rows = s.execute(select(PickListFulfilment.tote, Fulfilment)
                         .join(Fulfilment, Fulfilment.id == PickListFulfilment.fulfilment_id)
                         .where(PickListFulfilment.tote.like(f"{tote_prefix}-%"),
                                Fulfilment.status == FulfilmentStatus.picked)).all()
        units = {f.ref: sum(line.quantity for line in f.lines) for _, f in rows}
        return sorted(((tote, f.ref) for tote, f in rows), key=lambda r: -units[r[1]])


def bench_state(app, ref: str) -> dict:
    """What the bench still needs for `ref`: a barcode per unit left, and a
    barcode of a product that is not in it."""
    from app.fulfilment import pack
    from app.models import Barcode, Fulfilment

    with app.extensions["luyue.db"].reading() as s:
        f = s.scalar(select(Fulfilment).where(Fulfilment.ref == ref))
        left = pack.remaining(f)
        codes = [line.sku.barcodes[0].code for line in f.lines for _ in range(left.get(line.sku_id, 0))]
        mine = {line.sku_id for line in f.lines}
        stranger = s.scalar(select(Barcode.code).where(Barcode.sku_id.not_in(mine)).order_by(Barcode.code).limit(1))
        return {"codes": codes, "stranger": stranger}


def pack_in_domain(app, ref: str, packer_badge: str | None = None) -> str:
    """Pack every unit of `ref` in one parcel (as B001 unless told); its tracking number."""
    from app.fulfilment import pack
    from app.models import Fulfilment

    with app.extensions["luyue.db"].transaction() as s:
        f = s.scalar(select(Fulfilment).where(Fulfilment.ref == ref))
        for line in f.lines:
            pack.scan_item(s, f, line.sku.barcodes[0].code, quantity=line.quantity)
        packer = s.scalar(select(User).where(User.code == (packer_badge or PACKER[0])))
        return pack.close_parcel(s, f, 820, packer, app.config["LUYUE"].gs1_company_prefix).tracking_number


def cancel_order_of(app, ref: str) -> None:
    from app.fulfilment import cancel
    from app.models import Fulfilment

    with app.extensions["luyue.db"].transaction() as s:
        cancel.cancel(s, s.scalar(select(Fulfilment).where(Fulfilment.ref == ref)).order)


def log_in(browser, base: str, badge: str, pin: str, lang: str, user_language: str = "zh"):
    context = browser.new_context(viewport={"width": 360, "height": 640}, device_scale_factor=2,
                                  locale="zh-CN" if lang == "zh" else "en-US")
    page = context.new_page()
    page.goto(base + "/login")
    scan(page, badge)
    page.locator("#pin").fill(pin)
    page.locator("#pin").press("Enter")
    page.wait_for_load_state("networkidle")
    if lang != user_language:
        page.locator("button[name=language]").click()
        page.wait_for_load_state("networkidle")
    return context, page


def switch_back(page, lang: str, user_language: str = "zh") -> None:
    """Leave the user's profile language as the demo had it."""
    if lang != user_language:
        page.locator("button[name=language]").click()
        page.wait_for_load_state("networkidle")


def type_weight(page, grams: str) -> None:
    page.locator("#weight").fill("")
    for digit in grams:
        page.locator(f"[data-key='{digit}']").click()


def pack_and_ship(browser, base: str, app) -> None:
    """The pack bench and the dock, each language on its own picked batch:
    the biggest order packed on the screens in two parcels (a wrong item on
    the way), one packed and then cancelled (the dock intercepts it), one
    cancelled before packing (the bench intercepts it)."""
    from app.models import Fulfilment

    for lang in ("zh", "en"):
        totes = picked_totes(app, PICKERS["zh"][0], f"PK-{lang.upper()}", 4)
        (main_tote, main), *rest = totes
        to_intercept_at_dock = pack_in_domain(app, rest[0][1]) if rest else None
        if to_intercept_at_dock:
            cancel_order_of(app, rest[0][1])
        if len(rest) > 1:
            cancel_order_of(app, rest[1][1])

        context, page = log_in(browser, base, *PACKER, lang)
        page.goto(base + "/pack")
        shoot(page, "20-pack-home", lang)
        scan(page, main_tote)
        shoot(page, "21-pack-items", lang)
        state = bench_state(app, main)
        scan(page, state["codes"][0])
        shoot(page, "22-pack-item-scanned", lang)
        scan(page, state["stranger"])
        shoot(page, "23-pack-refused-wrong-item", lang)
        if len(state["codes"]) > 1:
            page.locator("#screen a[href$='/weight']").click()
            page.wait_for_load_state("networkidle")
            type_weight(page, "640")
            shoot(page, "24-pack-weight", lang)
            page.locator("#screen form[action$='/close'] button.button-primary").click()
            page.wait_for_load_state("networkidle")
            shoot(page, "25-pack-parcel-closed", lang)
            page.locator("#screen a[href$='/f/" + main + "']").first.click()
            page.wait_for_load_state("networkidle")
            for code in bench_state(app, main)["codes"]:
                scan(page, code)
        else:
            shoot(page, "24-pack-weight", lang)
        type_weight(page, "1250")
        page.locator("#screen form[action$='/close'] button.button-primary").click()
        page.wait_for_load_state("networkidle")
        shoot(page, "26-pack-done", lang)
        page.locator("#screen .parcel-list a").first.click()
        page.wait_for_load_state("networkidle")
        shoot(page, "27-pack-parcel", lang)
        if len(rest) > 1:
            page.goto(base + "/pack")
            scan(page, rest[1][0])
            shoot(page, "28-pack-intercepted", lang)
        switch_back(page, lang)
        context.close()

        context, page = log_in(browser, base, *DOCK, lang)
        page.goto(base + "/ship")
        shoot(page, "30-ship-home", lang)
        with app.extensions["luyue.db"].reading() as s:
            parcels = [(p.tracking_number, p.carrier) for p in
                       s.scalar(select(Fulfilment).where(Fulfilment.ref == main)).parcels]
        page.locator(f"[data-carrier='{parcels[0][1]}'] button").click()
        page.wait_for_load_state("networkidle")
        shoot(page, "31-ship-scan", lang)
        for tracking, _ in parcels:
            scan(page, tracking)
        shoot(page, "32-ship-loaded", lang)
        if to_intercept_at_dock:
            scan(page, to_intercept_at_dock)
            shoot(page, "33-ship-intercepted", lang)
        page.locator("#screen a[href$='/close']").click()
        page.wait_for_load_state("networkidle")
        shoot(page, "34-ship-confirm", lang)
        page.locator("#screen form[action$='/close'] button").click()
        page.wait_for_load_state("networkidle")
        shoot(page, "35-ship-closed", lang)
        returns_at_dock(page, base, app, lang, shipped_order(app, f"RET-{lang.upper()}", None)[1])
        switch_back(page, lang)
        context.close()


def report_returned(app, tracking_number: str) -> None:
    """The carrier reports a shipped parcel returned (it is on its way back)."""
    import datetime as dt

    from app.fulfilment import tracking
    from app.models import Parcel, TrackingStatus

    with app.extensions["luyue.db"].transaction() as s:
        parcel = s.scalar(select(Parcel).where(Parcel.tracking_number == tracking_number))
        tracking.report(s, parcel, TrackingStatus.returned, dt.datetime.now(dt.timezone.utc))


def return_bin(app, tracking_number: str) -> str:
    """The bin the returned parcel's first item usually goes to, as the items
    screen suggests it (else any bin of the node)."""
    from app.fulfilment import returns
    from app.models import Location, Parcel

    with app.extensions["luyue.db"].reading() as s:
        parcel = s.scalar(select(Parcel).where(Parcel.tracking_number == tracking_number))
        hinted = [b for item in returns.items(s, parcel) for b in item.bins]
        return hinted[0] if hinted else s.scalar(select(Location.code).where(
            Location.node_id == parcel.fulfilment.node_id).order_by(Location.code).limit(1))


def click_through(page, selector: str, step: str) -> None:
    """Click a button or link of the screen and wait for the `step` screen."""
    page.locator(selector).first.click()
    page.wait_for_selector(f"#screen[data-step='{step}']")
    page.wait_for_load_state("networkidle")


def returns_at_dock(page, base: str, app, lang: str, tracking_number: str) -> None:
    """As the dock user: a shipped parcel nobody reported returned is
    refused; once its carrier reported it returned, it is expected (the dock
    home says so), a label that is no parcel is refused, then the parcel is
    received: its items, a bin per SKU (the usual one taken), the put-away
    confirmed."""
    page.goto(base + "/ship/returns")
    page.wait_for_load_state("networkidle")
    scan(page, tracking_number)  # loaded minutes ago, not reported returned: refused
    shoot(page, "37c-returns-refused-not-reported", lang)
    report_returned(app, tracking_number)
    page.goto(base + "/ship")
    page.wait_for_load_state("networkidle")
    shoot(page, "36-ship-home-returns", lang)
    click_through(page, "#screen a[href$='/ship/returns']", "returns")
    shoot(page, "37-returns-scan", lang)
    scan(page, "SF1400000000000")  # no parcel of ours: refused
    shoot(page, "37b-returns-refused-unknown", lang)
    scan(page, tracking_number)
    page.wait_for_selector("#screen[data-step='items']")
    shoot(page, "38-returns-items", lang)
    shot_next = False
    while page.locator("#screen[data-step='items']").count():
        if shot_next:
            shoot(page, "38b-returns-items-next-sku", lang)
        usual = page.locator("#screen .stack a.button-primary")
        if usual.count():
            usual.first.click()
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(60)
        else:
            scan(page, return_bin(app, tracking_number))
        shot_next = not shot_next and page.locator("#screen[data-step='items']").count() > 0
    page.wait_for_selector("#screen[data-step='putaway']")
    shoot(page, "39-returns-putaway", lang)
    with page.expect_response(lambda r: r.request.method == "POST"):
        page.locator("#screen form[action$='/receive'] button").click()
    page.wait_for_selector("#screen[data-step='returns']")
    page.wait_for_timeout(100)
    shoot(page, "39b-returns-received", lang)


def shipped_order(app, tote_prefix: str, report) -> tuple[str, str]:
    """Of three orders of the dock's node picked in the domain, the one with
    the most SKUs (then units), packed and shipped in the domain, then
    `report`ed by its carrier; (fulfilment ref, tracking number)."""
    import datetime as dt

    from app.fulfilment import ship, tracking
    from app.models import Fulfilment, Node, Parcel

    refs = [ref for _tote, ref in picked_totes(app, PICKERS["zh"][0], tote_prefix, 3)]
    db = app.extensions["luyue.db"]
    with db.reading() as s:
        def size(ref):
            f = s.scalar(select(Fulfilment).where(Fulfilment.ref == ref))
            return len([line for line in f.lines if line.quantity]), sum(line.quantity for line in f.lines)
        ref = max(refs, key=size)
    number = pack_in_domain(app, ref)
    with db.transaction() as s:
        dock = s.scalar(select(User).where(User.code == DOCK[0]))
        parcel = s.scalar(select(Parcel).where(Parcel.tracking_number == number))
        handover = ship.open_handover(s, s.get(Node, dock.node_id), parcel.carrier, dock)
        ship.scan_parcel(s, handover, number, dock)
    if report is not None:
        with db.transaction() as s:
            parcel = s.scalar(select(Parcel).where(Parcel.tracking_number == number))
            tracking.report(s, parcel, report, dt.datetime.now(dt.timezone.utc))
    return ref, number


def customer_return(browser, base: str, app) -> None:
    """The lead authorises a customer's return on the order's page (every
    delivered unit); the dock finds it by its reference, scans a unit, puts
    it away sellable into its usual bin, the next ones in quarantine, and
    the return is received; the lead's returns page lists what is held."""
    from app.models import Barcode, CustomerReturn, Fulfilment, TrackingStatus

    for lang in ("zh", "en"):
        ref, _number = shipped_order(app, f"RMA-{lang.upper()}", TrackingStatus.delivered)
        context, page = log_in(browser, base, *LEAD, lang)
        page.goto(f"{base}/lead/f/{ref}")
        page.wait_for_load_state("networkidle")
        for field in page.locator("#customer-returns input[type=number]").all():
            field.fill(field.get_attribute("max"))
        page.locator("#return-reason").fill("不想要了" if lang == "zh" else "changed their mind")
        page.locator("#customer-returns").scroll_into_view_if_needed()
        shoot(page, "42-lead-return-authorise", lang)
        with page.expect_response(lambda r: r.request.method == "POST"):
            page.locator("#customer-returns button").click()
        page.wait_for_timeout(150)
        page.locator("#customer-returns").scroll_into_view_if_needed()
        shoot(page, "42b-lead-return-authorised", lang)
        switch_back(page, lang)
        context.close()

        with app.extensions["luyue.db"].reading() as s:
            f = s.scalar(select(Fulfilment).where(Fulfilment.ref == ref))
            rma = s.scalar(select(CustomerReturn).where(CustomerReturn.order_id == f.order_id))
            units = [(line.sku.code, s.scalar(select(Barcode.code).where(Barcode.sku_id == line.sku_id).limit(1)))
                     for line in rma.lines for _ in range(line.quantity)]
            rma_ref = rma.ref
        context, page = log_in(browser, base, *DOCK, lang)
        page.goto(base + "/ship/returns")
        page.wait_for_load_state("networkidle")
        shoot(page, "39c-returns-customer-expected", lang)
        scan(page, rma_ref)
        page.wait_for_selector("#screen[data-step='return']")
        shoot(page, "39d-returns-customer-return", lang)
        for n, (_sku, barcode) in enumerate(units):
            scan(page, barcode)
            page.wait_for_selector("#screen[data-step='unit']")
            if n == 0:
                shoot(page, "39e-returns-customer-unit", lang)
            kind = "sellable" if n == 0 else "quarantine"
            button = page.locator(f"#screen form.button-form[action$='/{kind}'] button")
            with page.expect_response(lambda r: r.request.method == "POST"):
                button.first.click()
            page.wait_for_timeout(100)
            if n == 0 and len(units) > 1:
                shoot(page, "39f-returns-customer-counted", lang)
        page.wait_for_selector("#screen[data-step='returns']")
        shoot(page, "39g-returns-customer-received", lang)
        switch_back(page, lang)
        context.close()

        context, page = log_in(browser, base, *LEAD, lang)
        page.goto(f"{base}/lead/returns")
        page.wait_for_load_state("networkidle")
        shoot(page, "43-lead-returns", lang, full_page=True)
        switch_back(page, lang)
        context.close()


# --- the same-city rider ----------------------------------------------------------------

STORE = demo.MAIN_STORE
STORE_PICKER, STORE_PACKER = "P101", "B101"
RIDERS = {"zh": ("R101", "6666"), "en": ("R102", "7777")}


def same_city_parcel(app, tote_prefix: str) -> str:
    """A same-city order of the store picked (P101) and packed (B101) through
    the domain, as the bench would; its parcel's tracking number."""
    from app.models import Delivery, Fulfilment

    for round_ in range(1, 6):
        for _tote, ref in picked_totes(app, STORE_PICKER, f"{tote_prefix}{round_}", 2):
            with app.extensions["luyue.db"].reading() as s:
                same_city = s.scalar(select(Fulfilment.delivery).where(Fulfilment.ref == ref)) == Delivery.same_city
            if same_city:
                return pack_in_domain(app, ref, STORE_PACKER)
    raise SystemExit(f"no same-city order to pack at {STORE}")


def rider(browser, base: str, app) -> None:
    """A rider of the store, each language with its own parcel: log in, the
    empty drop list, the pickup scan at the dock, the drop, a wrong code
    (refused, counted), the right one (delivered)."""
    from app.fulfilment import tracking
    from app.models import Parcel

    key = app.config["LUYUE"].delivery_code_secret or app.config["SECRET_KEY"]
    for lang in ("zh", "en"):
        number = same_city_parcel(app, f"SC-{lang.upper()}-")
        badge, pin = RIDERS[lang]
        context = browser.new_context(viewport={"width": 360, "height": 640}, device_scale_factor=2,
                                      locale="zh-CN" if lang == "zh" else "en-US")
        page = context.new_page()
        page.goto(base + "/login")
        scan(page, badge)
        page.locator("#pin").fill(pin)
        shoot(page, "50-ride-login", lang)
        page.locator("#pin").press("Enter")
        page.wait_for_load_state("networkidle")
        if lang != "zh":  # the demo's riders work in Chinese
            page.locator("button[name=language]").click()
            page.wait_for_load_state("networkidle")
        page.goto(base + "/ride/")
        shoot(page, "51-ride-home-empty", lang)
        scan(page, number)
        page.wait_for_selector("[data-drops]")
        shoot(page, "52-ride-picked-up", lang)
        page.locator(f"[data-tracking='{number}'] a.drop-link").click()
        page.wait_for_selector(f"#screen[data-parcel='{number}']")
        page.wait_for_load_state("networkidle")
        with app.extensions["luyue.db"].reading() as s:
            right = tracking.delivery_code(key, s.scalar(select(Parcel).where(Parcel.tracking_number == number)))
        wrong = next(c for c in ("1234", "0000", "9999") if c != right)
        page.locator("#code").fill(wrong)
        shoot(page, "53-ride-drop-code", lang)
        with page.expect_response(lambda r: r.request.method == "POST"):
            page.locator("#screen form[action$='/code'] button").click()
        page.wait_for_function("() => !document.querySelector('form.sending')")
        page.wait_for_selector("#screen [data-refusal=delivery_code_wrong]")
        shoot(page, "54-ride-refused-wrong-code", lang)
        page.locator("#code").fill(right)
        with page.expect_response(lambda r: r.request.method == "POST"):
            page.locator("#screen form[action$='/code'] button").click()
        page.wait_for_function("() => !document.querySelector('form.sending')")
        page.wait_for_selector("#screen:not([data-parcel])")
        page.wait_for_timeout(100)
        shoot(page, "55-ride-delivered", lang)
        with app.extensions["luyue.db"].reading() as s:
            status = s.scalar(select(Parcel.status).where(Parcel.tracking_number == number))
        print(f"  {number}: {status.value}")
        switch_back(page, lang)
        context.close()


def count_task(app, lang: str, offset: int) -> tuple[str, str, str, int]:
    """A bin of the counter's node holding a SKU with a barcode, asked for by
    the lead: (bin, SKU, barcode, the books' shelf figure)."""
    from app.fulfilment import count
    from app.models import BinStock, Location, Sku

    with app.extensions["luyue.db"].transaction() as s:
        lead = s.scalar(select(User).where(User.code == LEAD[0]))
        rows = s.execute(select(Location, Sku, BinStock.on_hand).join(BinStock, BinStock.location_id == Location.id)
                         .join(Sku, Sku.id == BinStock.sku_id)
                         .where(Location.node_id == lead.node_id, BinStock.on_hand >= 4)
                         .order_by(Location.code, Sku.code)).all()
        location, sku, on_hand = [r for r in rows if r[1].barcodes][offset]
        count.request(s, lead.node, location, sku, reason="lead", by=lead)
        return location.code, sku.code, sku.barcodes[0].code, on_hand - count.in_totes(s, location.id, sku.id)


def key_in(page, figure: int) -> None:
    page.locator("#quantity").fill("")
    for digit in str(figure):
        page.locator(f"[data-key='{digit}']").click()


def counts(browser, base: str, app) -> None:
    """The cycle count, each language on its own bins: the home with a count
    a lead asked for, the bin, three units scanned, a wrong product, the
    keypad, applied; another bin counted 5 short, sent to the lead; then the
    lead's counts page with that variance and the applied count."""
    other_barcode = None
    for i, lang in enumerate(("zh", "en")):
        where, sku, barcode, on_shelf = count_task(app, lang, 2 * i)
        short_bin, _short_sku, short_barcode, short_shelf = count_task(app, lang, 2 * i + 1)
        other_barcode = short_barcode if short_barcode != barcode else None
        badge, pin = PICKERS[lang]
        context = browser.new_context(viewport={"width": 360, "height": 640}, device_scale_factor=2,
                                      locale="zh-CN" if lang == "zh" else "en-US")
        page = context.new_page()
        page.goto(base + "/login")
        scan(page, badge)
        page.locator("#pin").fill(pin)
        page.locator("#pin").press("Enter")
        page.wait_for_load_state("networkidle")
        page.goto(base + "/count")
        shoot(page, "60-count-home", lang)
        scan(page, where)
        shoot(page, "61-count-bin", lang)
        for _ in range(3):
            scan(page, barcode)
        shoot(page, "62-count-tally", lang)
        if other_barcode:
            scan(page, other_barcode)
            page.wait_for_selector("#screen [data-refusal=count_other_product]")
            shoot(page, "63-count-refused-other-product", lang)
        key_in(page, on_shelf)
        shoot(page, "64-count-keypad", lang)
        with page.expect_response(lambda r: r.request.method == "POST"):
            page.locator("#screen form[action$='/confirm'] button.button-primary").click()
        page.wait_for_selector("#screen[data-step=count-bin]")
        shoot(page, "65-count-applied", lang)
        page.goto(base + "/count")
        scan(page, short_bin)
        scan(page, short_barcode)
        key_in(page, max(0, short_shelf - 5))
        with page.expect_response(lambda r: r.request.method == "POST"):
            page.locator("#screen form[action$='/confirm'] button.button-primary").click()
        page.wait_for_selector("#screen[data-step=count-bin]")
        shoot(page, "66-count-sent-to-lead", lang)
        context.close()

        context = browser.new_context(viewport={"width": 360, "height": 640}, device_scale_factor=2,
                                      locale="zh-CN" if lang == "zh" else "en-US")
        page = context.new_page()
        page.goto(base + "/login")
        scan(page, LEAD[0])
        page.locator("#pin").fill(LEAD[1])
        page.locator("#pin").press("Enter")
        page.wait_for_load_state("networkidle")
        switch_back(page, lang)  # the demo's lead works in Chinese: to English, and back below
        page.goto(base + "/lead/counts")
        shoot(page, "67-lead-counts", lang, full_page=True)
        switch_back(page, lang)
        context.close()


def outage(browser, base: str, app) -> None:
    """The database down (played by the app's Database raising what psycopg
    raises): a scan kept for sending again, and a screen opened meanwhile."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    db = app.extensions["luyue.db"]
    app.config["LUYUE"].unavailable_retry_after_seconds = 5

    def down(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, psycopg.OperationalError("connection timeout expired"))

    for lang in ("zh", "en"):
        badge, pin = PICKERS[lang]
        context, page = log_in(browser, base, badge, pin, lang, user_language=lang)
        claim = page.locator("button[name=orders][value='1']")
        if claim.count():
            with page.expect_response(lambda r: r.request.method == "POST"):
                claim.click()
            page.wait_for_timeout(100)
        else:  # the picker still holds a list from the screens before
            page.goto(base + "/pick/work")
        real = db.transaction, db.reading
        db.transaction = db.reading = down
        try:
            field = page.locator("[data-scan-input]")
            field.press_sequentially(f"TOTE-{lang.upper()}-OUT")
            with page.expect_response(lambda r: r.status == 503):
                field.press("Enter")
            page.wait_for_selector(".banner-network")
            shoot(page, "71-outage-scan-kept", lang)
            page.goto(base + "/pick")
            shoot(page, "70-outage-page", lang)
        finally:
            db.transaction, db.reading = real
        context.close()


WALKS = ("pick", "lead_board", "pack_and_ship", "customer_return", "lead_dashboard", "rider", "counts", "outage",
         "pick_changed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--only", nargs="+", choices=WALKS, help="only these walks; the other shots stay")
    args = parser.parse_args()
    walks = set(args.only or WALKS)
    from playwright.sync_api import sync_playwright

    workdir = Path(tempfile.mkdtemp(prefix="luyue-screens-"))
    url = f"sqlite:///{workdir / 'screens.db'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    app = create_app({"database_url": url, "secret_key": "screens"})
    demo.load(app.extensions["luyue.db"], orders=40)

    for lang in ("zh", "en"):
        (OUT / lang).mkdir(parents=True, exist_ok=True)
        for old in (OUT / lang).glob("*.png") if args.only is None else ():
            old.unlink()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
            if "pick" in walks:
                for lang in ("zh", "en"):
                    pick_language(browser, base, app, lang)
            if "lead_board" in walks:
                # A list in progress for the lead's board.
                with app.extensions["luyue.db"].transaction() as s:
                    pick.claim_next(s, s.scalar(select(User).where(User.code == "P002")), 2)
                lead_board(browser, base, app)
            for name in ("pack_and_ship", "customer_return", "lead_dashboard", "rider", "counts", "outage",
                         "pick_changed"):
                # pick_changed last: it leaves two released lists behind.
                if name in walks:
                    globals()[name](browser, base, app)
            browser.close()
    finally:
        server.shutdown()
        hub = app.extensions.get("luyue.live")
        if hub is not None:
            hub.stop()
        app.extensions["luyue.db"].dispose()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
