"""The `luyue` command: a Flask CLI group with the operator's commands."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from app.web import database


def _create_app():
    from app import create_app
    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def main() -> None:
    """luyue (履约): order fulfilment for warehouses and stores."""


def register(app: Flask) -> None:
    for command in (db_group, token_group, user_group, import_group, serve, demo, tick, webhook_group):
        app.cli.add_command(command)
    try:
        from printing.cli import label_test
    except ImportError:  # the printing package is optional for API-only deployments
        return

    @app.cli.group("label")
    def label_group() -> None:
        """Shipping labels."""

    label_group.add_command(label_test, "test")


# --- database ------------------------------------------------------------------

@click.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Create or upgrade the schema to the latest migration."""
    from app.schema import upgrade
    upgrade(database())
    click.echo(f"database at {database().engine.url.render_as_string(hide_password=True)} is up to date")


# --- access --------------------------------------------------------------------

@click.group("token")
def token_group() -> None:
    """API tokens for sales channels and carriers."""


@token_group.command("create")
@click.option("--channel", help="The sales channel's name; created if new.")
@click.option("--admin", is_flag=True, help="May also change master data (nodes, SKUs, stock).")
@click.option("--carrier", help="A carrier's code instead of a channel: the token posts tracking updates only.")
@with_appcontext
def token_create(channel: str | None, admin: bool, carrier: str | None) -> None:
    """Print a new token (alone on the last line); it is not shown again."""
    from app.access import create_carrier_token, create_token
    from app.fulfilment.errors import Refusal
    if bool(channel) == bool(carrier):
        raise click.UsageError("give --channel or --carrier (one of them)")
    if carrier:
        if admin:
            raise click.UsageError("--admin is for channel tokens")
        try:
            with database().transaction() as session:
                token = create_carrier_token(session, carrier)
        except Refusal as e:
            raise click.ClickException(e.message("en")) from None
        click.echo(f"token for carrier {carrier}:", err=True)
        click.echo(token)
        return
    with database().transaction() as session:
        token = create_token(session, channel, admin=admin)
    click.echo(f"{'admin ' if admin else ''}token for channel {channel}:", err=True)
    click.echo(token)


def _stamp(at) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%d %H:%M:%SZ")


def _owner(token) -> str:
    return f"channel {token.channel.name}" if token.channel is not None else f"carrier {token.carrier}"


@token_group.command("list")
@with_appcontext
def token_list() -> None:
    """One line per token: id, fingerprint, owner, admin, created (UTC), state.
    The secret itself is never shown (only its hash is stored)."""
    from app.access import list_tokens, token_fingerprint
    with database().reading() as session:
        tokens = list_tokens(session)
        if not tokens:
            click.echo("no tokens", err=True)
            return
        click.echo(f"{'id':>5}  {'fingerprint':<12}  {'owner':<24}  {'admin':<5}  {'created':<20}  state", err=True)
        for t in tokens:
            state = "active" if t.revoked_at is None else f"revoked {_stamp(t.revoked_at)}"
            click.echo(f"{t.id:>5}  {token_fingerprint(t):<12}  {_owner(t):<24}  {'admin' if t.admin else '-':<5}  "
                       f"{_stamp(t.created_at):<20}  {state}")


@token_group.command("revoke")
@click.argument("ident", metavar="ID")
@with_appcontext
def token_revoke(ident: str) -> None:
    """Revoke token ID (the id or fingerprint `luyue token list` shows): later
    API calls with it get 401 unauthorized. The row is kept. This process
    forgets the token at once; a running server caches tokens per process
    for up to 10 s (TOKEN_TTL), so there it stops working within 10 s."""
    from app.access import revoke_token, token_fingerprint
    from app.fulfilment.errors import Refusal
    try:
        with database().transaction() as session:
            token = revoke_token(session, ident)
            done = (f"revoked token {token.id} ({token_fingerprint(token)}, {_owner(token)}) "
                    f"at {_stamp(token.revoked_at)}")
    except Refusal as e:
        raise click.ClickException(e.message("en")) from None
    click.echo(done)


@click.group("user")
def user_group() -> None:
    """Floor users: pickers, packers, dock staff, riders, leads."""


@user_group.command("create")
@click.option("--code", required=True, help="Badge code the user scans to log in.")
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(["picker", "packer", "dock", "rider", "lead", "admin"]))
@click.option("--node", "node_code", help="The node the user works at.")
@click.option("--pin", required=True, help="4 to 12 digits.")
@click.option("--language", default="zh", type=click.Choice(["zh", "en"]))
@with_appcontext
def user_create(code: str, name: str, role: str, node_code: str | None, pin: str, language: str) -> None:
    """Create a user, or reset an existing one's name, role, node and PIN."""
    from app.access import create_user
    from app.fulfilment.errors import Refusal
    try:
        with database().transaction() as session:
            create_user(session, code, name, role, pin, node_code, language)
    except (ValueError, Refusal) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"user {code} ({role}) saved")


@user_group.command("deactivate")
@click.argument("code")
@with_appcontext
def user_deactivate(code: str) -> None:
    """Stop a user logging in; their logins on every device end at once."""
    _set_active(code, False)


@user_group.command("activate")
@click.argument("code")
@with_appcontext
def user_activate(code: str) -> None:
    """Let a deactivated user log in again (with a new login: old ones stay ended)."""
    _set_active(code, True)


def _set_active(code: str, active: bool) -> None:
    from app.access import set_active
    from app.fulfilment.errors import Refusal
    try:
        with database().transaction() as session:
            set_active(session, code, active)
    except Refusal as e:
        raise click.ClickException(e.message("en")) from None
    click.echo(f"user {code} {'active' if active else 'deactivated; logged out everywhere'}")


# --- webhooks --------------------------------------------------------------------

@click.group("webhook")
def webhook_group() -> None:
    """A channel's webhook: its event feed POSTed to a URL, signed."""


def _channel(session, name: str):
    from sqlalchemy import select

    from app.models import Channel
    channel = session.scalar(select(Channel).where(Channel.name == name))
    if channel is None:
        raise click.ClickException(f"no channel {name!r}")
    return channel


@webhook_group.command("set")
@click.option("--channel", required=True, help="The sales channel's name.")
@click.option("--url", required=True, help="http(s) URL that receives each event as a POST.")
@click.option("--secret", help="HMAC key for X-Luyue-Signature (16+ characters); generated when new and not given.")
@click.option("--after", type=int, help="Start after this seq (0: the whole feed); default: from now on.")
@with_appcontext
def webhook_set(channel: str, url: str, secret: str | None, after: int | None) -> None:
    """Register or replace the channel's webhook; prints its secret last."""
    from app import webhooks
    from app.fulfilment.errors import Refusal
    try:
        with database().transaction() as session:
            w, created = webhooks.register(session, _channel(session, channel), url, secret, after,
                                           allow_private=current_app.config["LUYUE"].webhook_allow_private)
            doc = webhooks.document(session, w, with_secret=True)
    except Refusal as e:
        raise click.ClickException(e.message("en")) from None
    click.echo(f"webhook {'created' if created else 'replaced'} for {channel}: {doc['url']} "
               f"(after seq {doc['delivered_seq']}); secret:", err=True)
    click.echo(doc["secret"])


@webhook_group.command("show")
@click.option("--channel", required=True)
@click.option("--log", "log_lines", default=10, show_default=True, help="How many recent attempts to list.")
@with_appcontext
def webhook_show(channel: str, log_lines: int) -> None:
    """The webhook, its cursor and backlog, and its latest delivery attempts."""
    from app import webhooks
    with database().reading() as session:
        w = webhooks.webhook_of(session, _channel(session, channel).id)
        if w is None:
            raise click.ClickException(f"channel {channel} has no webhook")
        doc = webhooks.document(session, w)
        attempts = webhooks.delivery_log(session, w, log_lines)
    for key in ("url", "delivered_seq", "pending", "failures", "next_attempt_at", "last_error"):
        click.echo(f"{key}: {doc[key]}")
    for a in attempts:
        click.echo(f"  {a['at']} seq {a['seq']} attempt {a['attempt']}: "
                   f"{'ok' if a['ok'] else 'failed'} {a['status_code'] or ''} {a['error'] or ''} {a['duration_ms']} ms")


@webhook_group.command("remove")
@click.option("--channel", required=True)
@with_appcontext
def webhook_remove(channel: str) -> None:
    """Stop pushing the channel's feed (the feed itself stays)."""
    from app import webhooks
    with database().transaction() as session:
        removed = webhooks.unregister(session, _channel(session, channel))
    click.echo(f"webhook of {channel} {'removed' if removed else 'was not set'}")


# --- CSV import ------------------------------------------------------------------

@click.group("import")
def import_group() -> None:
    """Load master data from CSV files (UTF-8, a header row), all or nothing."""


# The columns of each import, its key first (also checked in the header row).
_COLUMNS = {
    "nodes": ("code", "name", "kind", "province", "city", "lat", "lon", "daily_capacity", "same_city_radius_km",
              "active"),
    "skus": ("sku", "name", "barcodes", "weight_g", "presale"),
    "stock": ("node", "location", "sku", "on_hand", "walk_seq"),
}


class _RowRefused(Exception):
    """A refusal about one row of a CSV file (row 1 is the header)."""

    def __init__(self, row: int, refusal) -> None:
        super().__init__(f"row {row}: {refusal.message('en')}")


def _import(path: Path, apply, what: str) -> None:
    from app.csvfile import CsvRefused, read_rows
    from app.fulfilment.errors import Refusal
    try:
        rows = read_rows(path, _COLUMNS[what])
    except CsvRefused as e:
        raise click.ClickException(f"{path.name}: nothing imported: {e}") from None
    try:
        with database().transaction() as session:
            count = apply(session, rows)
    except (Refusal, _RowRefused) as e:
        raise click.ClickException(f"{path.name}: nothing imported. {e}") from None
    click.echo(f"{path.name}: {count} rows imported")


def _row_error(number: int, e) -> _RowRefused:
    from app.fulfilment.errors import Refusal
    if isinstance(e, Refusal):
        return _RowRefused(number, e)
    raise e


def _each_row(key: str, model, put, shape=lambda data: data):
    """An import that validates each row as `model` and puts it under its
    `key` column; a refused row is named by its number in the file."""
    from app import masterdata

    def apply(session, rows):
        for n, row in enumerate(rows, start=2):
            data = shape({k: v for k, v in row.items() if v != "" and k != key})
            try:
                put(session, row.get(key, ""), masterdata.validate(model, data, strict=False))
            except Exception as e:  # noqa: BLE001 - re-raised with the row number
                raise _row_error(n, e) from None
        return len(rows)

    return apply


@import_group.command("nodes")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_nodes(path: Path) -> None:
    """Columns: code,name,kind,province,city,lat,lon,daily_capacity,same_city_radius_km,active"""
    from app import masterdata
    _import(path, _each_row("code", masterdata.NodeBody, masterdata.put_node), "nodes")


@import_group.command("skus")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_skus(path: Path) -> None:
    """Columns: sku,name,barcodes (separated by '|'),weight_g,presale"""
    from app import masterdata

    def barcodes(data: dict) -> dict:
        data["barcodes"] = [b for b in data.get("barcodes", "").replace(" ", "|").split("|") if b]
        return data

    _import(path, _each_row("sku", masterdata.SkuBody, masterdata.put_sku, barcodes), "skus")


@import_group.command("stock")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_stock(path: Path) -> None:
    """Columns: node,location,sku,on_hand[,walk_seq] — units counted on each
    bin's shelf (units picked and not yet shipped are kept on top)."""
    from sqlalchemy import select

    from app import masterdata
    from app.fulfilment.errors import Refusal
    from app.models import Node, Sku

    def apply(session, rows):
        # Every row is checked, and named by its number, before anything is counted.
        by_node: dict[str, list] = {}
        for n, row in enumerate(rows, start=2):
            try:
                item = masterdata.validate(masterdata.StockItem, {k: v for k, v in row.items()
                                                                  if k != "node" and v != ""}, strict=False)
            except Refusal as e:
                raise _row_error(n, e) from None
            by_node.setdefault(row.get("node", ""), []).append((n, item))
        nodes = {node.code: node for node in session.scalars(select(Node).where(Node.code.in_(by_node)))}
        known = set(session.scalars(select(Sku.code).where(
            Sku.code.in_({item.sku for items in by_node.values() for _, item in items}))))
        for code, items in by_node.items():
            for n, item in items:
                if code not in nodes:
                    raise _row_error(n, Refusal("not_found", what=f"node {code!r}"))
                if item.sku not in known:
                    raise _row_error(n, Refusal("unknown_sku", skus=item.sku))
        for code, items in by_node.items():
            body = masterdata.StockBody.model_construct(items=[item for _, item in items])
            masterdata.count_shelf(session, nodes[code], body, by="import", reason="import")
        return len(rows)

    _import(path, apply, "stock")


# --- running -----------------------------------------------------------------------

@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
@click.option("--threads", default=64, show_default=True, type=int,
              help="threads per worker; each open live screen (a picker's home, a lead's dashboard) holds one")
@with_appcontext
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Run the production server (gunicorn) on the configured database.
    Refused without a strong LUYUE_SECRET_KEY (it signs every login)."""
    from app import secret_key
    from app.server import run_gunicorn
    try:
        secret_key.check(current_app.config["SECRET_KEY"])
    except secret_key.WeakSecretKey as weak:
        raise click.ClickException(str(weak)) from None
    if database().dialect == "sqlite" and workers > 1:
        click.echo("SQLite: one worker process (use PostgreSQL for several)", err=True)
        workers = 1
    run_gunicorn(host, port, workers, threads)


@click.command("tick")
@with_appcontext
def tick() -> None:
    """Run the time-based work once (what `serve` does every 30 s)."""
    from app.scheduler import run_due
    for job, count in run_due(current_app).items():
        click.echo(f"{job}: {count}")


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Load the demo data and stop.")
@click.option("--reset", is_flag=True, help="Start again from a fresh demo database.")
@with_appcontext
def demo(host: str, port: int, no_serve: bool, reset: bool) -> None:
    """Create the SQLite demo database, load demo data, print logins, serve."""
    from app.demo import run
    run(current_app, host=host, port=port, serve=not no_serve, reset=reset)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
