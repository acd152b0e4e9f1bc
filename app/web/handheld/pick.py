"""Picking screens (拣货): thin views over `app.fulfilment.pick`.

Screens, as named states:
    home      my node, orders waiting, claim a batch or one order, or resume
    totes     scan an empty tote for each slot of the cart
    line      go to the bin, scan it, scan the units, scan the order's tote
    quantity  the keypad: how many units in hand, for large counts
    short     confirm the bin is short
    done      the list is finished: which tote holds which order
    lists     (lead) lists in progress, release an abandoned one

Every scan answers with the screen to show next; a refusal answers 422 with
the same screen and the catalogue's message in a banner, nothing recorded.
A screen whose list changed underneath (an order cancelled, a fulfilment
re-dispatched) heals on the next scan or reload: the current line, with a
notice saying what changed and what to put back; a list a lead released
says so on the home screen.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app import sock
from app.fulfilment import clock, pick
from app.fulfilment.errors import Refusal
from app.live import close_if_stopping, hub as live_hub, stopping
from app.models import (
    Fulfilment,
    PickLine,
    PickList,
    PickListFulfilment,
    PickListState,
    PickStep,
)
from app.web import authorisation, database
from app.web.handheld import current_user as _me, refusal_text, render_screen, scan_id

bp = Blueprint("pick", __name__, url_prefix="/pick")

SCREENS = "handheld/pick/"
# A websocket close code the ws extension does not retry: not allowed here.
CLOSE_NOT_ALLOWED = 1008


@bp.errorhandler(Refusal)
def _refused(refusal: Refusal):
    """A refusal outside a scan (a claim, a release): the home screen shows it."""
    if g.user is None or g.user.node_id is None or refusal.key in ("forbidden", "not_found", "no_node"):
        return render_screen("handheld/refused.html", refusal.status, refusal=refusal)
    return _show(refusal=refusal)


bp.add_app_template_global(pick.progress, "pick_progress")


# --- what to show --------------------------------------------------------------------

def _show(refusal: Refusal | None = None, notice: str | None = None, finished: str | None = None,
          changed: str | None = None):
    """The screen for where the picker stands now, with a refusal or a
    notice; `changed`: what changed under the list, said first."""
    status = refusal.status if refusal is not None else 200
    if status in (401, 403, 404, 409):
        status = 422  # in place, like any refusal on a handheld screen
    healed, finished_now = _heal()
    changed = _joined(changed, healed)
    notice = _joined(changed, notice)
    notice_kind = "changed" if changed else None
    finished = finished or finished_now
    with database().reading() as s:
        if finished is not None:
            done = _finished_list(s, finished)
            if done is not None:
                return render_screen(SCREENS + "done.html", status, {"HX-Push-Url": url_for("pick.done", ref=finished)},
                                     pl=done, rows=_done_rows(done), batch=pick.BATCH_ORDERS,
                                     refusal=refusal, notice=notice, notice_kind=notice_kind)
        pl = pick.held_by(s, _me(s))
        if pl is None:
            if refusal is None and notice is None:
                released = pick.release_notice(s, _me(s))
                if released is not None:
                    notice, notice_kind = refusal_text(released), "changed"
            return render_screen(SCREENS + "home.html", status, {"HX-Push-Url": url_for("pick.home")},
                                 **_home_context(s), refusal=refusal, notice=notice, notice_kind=notice_kind)
        headers = {"HX-Push-Url": url_for("pick.work")}
        slot = pick.next_tote_slot(pl)
        if slot is not None:
            return render_screen(SCREENS + "totes.html", status, headers, pl=pl, slot=slot,
                                 refusal=refusal, notice=notice, notice_kind=notice_kind)
        line = pick.current_line(pl)
        if line is None:
            return render_screen(SCREENS + "home.html", status, {"HX-Push-Url": url_for("pick.home")},
                                 **_home_context(s), refusal=refusal, notice=notice, notice_kind=notice_kind)
        done, total = pick.progress(pl)
        return render_screen(SCREENS + "line.html", status, headers, pl=pl, line=line,
                             slot=pick.slot_of(pl, line), done=done, total=total, refusal=refusal, notice=notice,
                             notice_kind=notice_kind)


def _heal() -> tuple[str | None, str | None]:
    """A stale screen heals itself: when the picker's list no longer matches
    its fulfilments, bring it up to date now (a write, only then). Returns
    what changed, as a notice, and the list's ref if that finished it."""
    with database().reading() as s:
        pl = pick.held_by(s, _me(s))
        if pl is None or not pick.stale(pl):
            return None, None
        ref = pl.ref
    try:
        accepted = database().run(lambda s: pick.refresh(s, _me(s)))
    except Refusal:
        return None, None  # released or finished meanwhile: the screen shows where the picker stands
    return _changes_text(accepted.changes), ref if accepted.what == "list_done" else None


def _changes_text(changes) -> str | None:
    """What changed under the list, in the picker's words, one sentence each."""
    texts = []
    for change in changes:
        if change.why == "cancelled":
            text = _("Order %(fulfilment)s was cancelled: its lines are gone.", fulfilment=change.fulfilment)
        elif change.why == "moved":
            text = _("%(fulfilment)s was moved to another node: its lines are gone.", fulfilment=change.fulfilment)
        else:
            text = _("%(fulfilment)s needs fewer units now: its lines were shortened.", fulfilment=change.fulfilment)
        if change.put_back != "—":
            if change.why == "reduced":
                text = _joined(text, _("Put back what it no longer needs: %(bins)s.", bins=change.put_back))
            else:
                text = _joined(text, _("Put back what was picked for it: %(bins)s.", bins=change.put_back))
        texts.append(text)
    return _joined(*texts)


def _joined(*sentences: str | None) -> str | None:
    """Sentences one after another: a space between them in English, none in Chinese."""
    gap = "" if (g.get("language") or "zh").startswith("zh") else " "
    return gap.join(n for n in sentences if n) or None


def _home_context(s: Session) -> dict:
    return {"waiting": pick.waiting(s, g.user.node_id), "open_lists": pick.open_lists(s, g.user.node_id),
            "held": pick.held_by(s, _me(s)), "batch": pick.BATCH_ORDERS}


def _finished_list(s: Session, ref: str) -> PickList | None:
    return s.scalar(select(PickList).where(PickList.ref == ref, PickList.picker_id == g.user.id,
                                           PickList.state == PickListState.done).options(
        selectinload(PickList.orders).selectinload(PickListFulfilment.fulfilment).selectinload(Fulfilment.lines),
        selectinload(PickList.lines).selectinload(PickLine.sku),
        selectinload(PickList.lines).selectinload(PickLine.fulfilment_line)))


def _done_rows(pl: PickList) -> list[dict]:
    rows = []
    for slot in pl.orders:
        lines = [line for line in pl.lines if line.fulfilment_line.fulfilment_id == slot.fulfilment_id]
        rows.append({"slot": slot.slot, "tote": slot.tote, "fulfilment": slot.fulfilment.ref,
                     "status": slot.fulfilment.status.value,
                     "picked": sum(line.picked for line in lines), "short": sum(line.short for line in lines)})
    return rows


def _notice(accepted: pick.Accepted) -> str | None:
    """A right scan's confirmation, read back from what it changed."""
    if accepted.repeat:
        return _("Already counted.")
    if accepted.what == "tote_set":
        return _("Tote set.")
    if accepted.line_id is None:
        return None
    with database().reading() as s:
        line = s.get(PickLine, accepted.line_id)
        if accepted.what == "location":
            return _("Location %(code)s confirmed.", code=line.location.code)
        if accepted.what in ("unit", "quantity"):
            return _("%(picked)s of %(quantity)s picked.", picked=line.picked, quantity=line.quantity)
        if accepted.what == "line_done":
            return _("Line done.")
        if accepted.what == "short":
            return _("Short reported: %(missing)s re-dispatched.", missing=line.short)
    return None


def _after(work) -> tuple:
    """Run one scan-like change; answer with the next screen."""
    ref = None
    with database().reading() as s:
        held = pick.held_by(s, _me(s))
        ref = held.ref if held is not None else None
    try:
        accepted = database().run(lambda s: work(s, _me(s)))
    except Refusal as refusal:
        return _show(refusal=refusal)
    changed = _changes_text(accepted.changes)
    if accepted.what == "list_done" and ref is not None:
        return _show(notice=_("List finished."), finished=ref, changed=changed)
    return _show(notice=_notice(accepted), changed=changed)


# --- screens -------------------------------------------------------------------------

@bp.get("")
def home():
    """home: my node, orders waiting, claim or resume (and whether a lead
    released the list I held)."""
    with database().reading() as s:
        context = _home_context(s)
        released = pick.release_notice(s, _me(s)) if context["held"] is None else None
        return render_screen(SCREENS + "home.html", **context,
                             notice=refusal_text(released) if released is not None else None,
                             notice_kind="changed" if released is not None else None)


@bp.get("/work")
def work():
    """The screen for the list in hand (totes or line); home without one."""
    return _show()


@bp.post("/claim")
def claim():
    """home -> totes (a new or released list), or the list already held.
    Refusals: nothing_to_pick."""
    try:
        orders = int(request.form.get("orders", pick.BATCH_ORDERS))
    except ValueError:
        orders = pick.BATCH_ORDERS
    try:
        database().run(lambda s: pick.claim_next(s, _me(s), orders))
    except Refusal as refusal:
        return _show(refusal=refusal)
    return _show()


@bp.post("/scan")
def scan():
    """Every scan of the picking scenario.

    totes: tote -> next slot's tote, or line (location step) after the last.
    line/location: the bin's label -> line/product.
    line/product, line/quantity: a unit -> line/quantity, or line/tote when
        the line's quantity is in hand.
    line/tote: the order's tote -> next line, or done after the last.
    Refusals (422, same screen): not_a_tote, tote_in_use, wrong_location,
    wrong_product, product_of_another_line, over_pick, pick_incomplete,
    wrong_tote, scan_unreadable, no_pick_list, pick_list_released (home). A
    repeated scan id: the same screen, nothing counted twice. The list
    changed underneath: the current line with a notice saying what changed
    (the scan applied only if it fits that line)."""
    code = request.form.get("scan", "")
    sid = scan_id()
    return _after(lambda s, me: pick.scan(s, me, sid, code))


@bp.get("/quantity")
def keypad():
    """quantity: the keypad for the current line (after one unit was scanned)."""
    with database().reading() as s:
        pl = pick.held_by(s, _me(s))
        line = pick.current_line(pl) if pl is not None and not pick.stale(pl) else None
        if line is None or line.step not in (PickStep.quantity, PickStep.tote):
            return redirect(url_for("pick.work"))
        return render_screen(SCREENS + "quantity.html", pl=pl, line=line, slot=pick.slot_of(pl, line))


@bp.post("/quantity")
def enter_quantity():
    """quantity: a total -> line/quantity, or line/tote when complete.
    Refusals: over_pick, quantity_invalid, scan_product_first."""
    raw = (request.form.get("quantity") or "").strip()
    sid = scan_id()
    if not raw.isdigit() or len(raw) > 6:
        with database().reading() as s:
            pl = pick.held_by(s, _me(s))
            line = pick.current_line(pl) if pl is not None else None
            most = line.quantity if line is not None else 1
        return _show(refusal=Refusal("quantity_invalid", most=most))
    return _after(lambda s, me: pick.enter_quantity(s, me, sid, int(raw)))


@bp.get("/short")
def short_confirm():
    """short: what will happen if the bin is reported short; confirm or go back."""
    with database().reading() as s:
        pl = pick.held_by(s, _me(s))
        line = pick.current_line(pl) if pl is not None and not pick.stale(pl) else None
        if line is None or line.step not in (PickStep.product, PickStep.quantity):
            return redirect(url_for("pick.work"))
        return render_screen(SCREENS + "short.html", pl=pl, line=line, slot=pick.slot_of(pl, line),
                             missing=line.quantity - line.picked)


@bp.post("/short")
def short():
    """short: confirmed -> line/tote with the units in hand, the next line when
    none, or done. The missing units are re-dispatched and the bin recounted.
    Refusals: short_needs_location, short_not_needed."""
    sid = scan_id()
    return _after(lambda s, me: pick.short_pick(s, me, sid))


@bp.get("/done/<ref>")
def done(ref: str):
    """done: a finished list of mine, tote by tote."""
    with database().reading() as s:
        pl = _finished_list(s, ref)
        if pl is None:
            return redirect(url_for("pick.home"))
        return render_screen(SCREENS + "done.html", pl=pl, rows=_done_rows(pl), batch=pick.BATCH_ORDERS)


# --- the lead ------------------------------------------------------------------------

def _lists_screen(status: int = 200, refusal: Refusal | None = None):
    with database().reading() as s:
        held = pick.lists_in_progress(s, g.user.node_id)
        rows = [{"ref": pl.ref, "picker": pl.picker.name if pl.picker else "?",
                 "badge": pl.picker.code if pl.picker else "",
                 "since": pl.claimed_at.astimezone(clock.zone()).strftime("%H:%M") if pl.claimed_at else "",
                 "progress": pick.progress(pl)} for pl in held]
        return render_screen(SCREENS + "lists.html", status, rows=rows, refusal=refusal,
                             open_lists=pick.open_lists(s, g.user.node_id))


@bp.get("/lists")
def lists():
    """lists: who holds which list at my node, since when, how far."""
    return _lists_screen()


@bp.post("/lists/<ref>/release")
def release(ref: str):
    """lists: release -> lists (the list waits for the next claim, as it was).
    Refusals: pick_list_not_held, not_found."""
    def work(s: Session) -> None:
        me = _me(s)
        pick.release(s, pick.list_for_release(s, me, ref), me)
    try:
        database().run(work)
    except Refusal as refusal:
        return _lists_screen(422, refusal)
    return redirect(url_for("pick.lists"))


# --- live count ----------------------------------------------------------------------

@sock.route("/live", bp=bp)
def live(ws) -> None:
    """Pushes the home screen's 'orders waiting' whenever events commit
    (htmx's ws extension swaps it by id); a stopping server closes it with
    1012 and the page reconnects."""
    if authorisation.socket_refusal() is not None:
        ws.close(reason=CLOSE_NOT_ALLOWED, message="picker or lead role needed")
        return
    hub, shown = live_hub(current_app), None
    # The seq is read before counting: an order committed while counting wakes
    # the next wait instead of slipping between the count and the wait.
    seq = hub.last_seq
    while ws.connected and not stopping.is_set():
        with database().reading() as s:
            count = pick.waiting(s, g.user.node_id)
        if count != shown:
            ws.send(render_template(SCREENS + "_waiting.html", waiting=count))
            shown = count
        seq = hub.wait(seq, 25.0)
    close_if_stopping(ws)

