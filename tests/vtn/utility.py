"""The utility's ("business logic", BL) side of the OpenADR tests: a small CLI over
ElaadNL's openadr3-client library (not raw HTTP), so that an end-to-end test spans three
implementations written apart: the Rust VTN (openleadr-vtn), this client, and the VEN
under test.

Run it with the Python of the ``utility-venv`` that tests/vtn/build.sh makes
(openadr3-client needs Python >= 3.12); ``tests/e2e/vtn_support.py`` does, by
subprocess. Every command prints one JSON document on stdout (the VTN's objects as the
library models them, camelCase as on the wire); a failure prints
``{"error": ..., "status": <HTTP status or null>, "body": ...}`` on stderr and exits 1.

The VTN and the BL's credentials come from the environment::

    VTN_BASE_URL=http://127.0.0.1:PORT VTN_CLIENT_ID=... VTN_CLIENT_SECRET=... \\
    [VTN_TOKEN_URL=http://127.0.0.1:PORT/auth/token] python utility.py COMMAND ...

    create-program --name NAME [--target T ...]
    create-event --program-id ID --start ISO8601 --duration PT1H --value 75000 [--value ...]
                 [--type IMPORT_CAPACITY_LIMIT|SIMPLE|...] [--units KW] [--target T ...]
                 [--name NAME] [--priority N]
    update-event --event-id ID [the same options, each optional: what is given replaces]
    delete-event --event-id ID [--with-reports]
    list-events [--program-id ID]
    create-ven --ven-name NAME --client-id VEN_CLIENT_ID [--target T ...]   (or update its targets)
    list-reports [--program-id ID] [--event-id ID] [--client-name NAME]
    hash-secret                          (stdin: client secrets, one a line; prints {"hashes": [argon2id PHC strings]})

An event's ``intervalPeriod`` is ``{start, duration}``: each ``--value`` makes one
interval (ids 0, 1, ...) of that duration, one after the other from ``start``, with one
payload ``{type, values: [value]}``; ``--units`` (default KW for the capacity types)
goes in the event's ``payloadDescriptors``.

Quirks of the library, handled here: plain http needs ``allow_insecure_http=True`` and
``OAUTHLIB_INSECURE_TRANSPORT=1`` (set below, before oauthlib is imported).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta
from typing import Any

os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the token URL is plain http on loopback

CAPACITY_TYPES = {"IMPORT_CAPACITY_LIMIT", "EXPORT_CAPACITY_LIMIT", "IMPORT_CAPACITY_SUBSCRIPTION",
                  "IMPORT_CAPACITY_RESERVATION", "IMPORT_CAPACITY_AVAILABLE", "EXPORT_CAPACITY_SUBSCRIPTION",
                  "EXPORT_CAPACITY_RESERVATION", "EXPORT_CAPACITY_AVAILABLE", "DISPATCH_SETPOINT"}
PAGE = 50  # openleadr-vtn's maximum page size


class UtilityError(Exception):
    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def client() -> Any:
    from openadr3_client.bl.http_factory import BusinessLogicHttpClientFactory
    from openadr3_client.version import OADRVersion

    try:
        base_url = os.environ["VTN_BASE_URL"]
        client_id = os.environ["VTN_CLIENT_ID"]
        secret = os.environ["VTN_CLIENT_SECRET"]
    except KeyError as exc:
        raise UtilityError(f"{exc.args[0]} is not set (VTN_BASE_URL, VTN_CLIENT_ID, VTN_CLIENT_SECRET)") from None
    return BusinessLogicHttpClientFactory.create_http_bl_client(
        vtn_base_url=base_url,
        client_id=client_id,
        client_secret=secret,
        token_url=os.environ.get("VTN_TOKEN_URL") or None,  # None: discovered at GET /auth/server
        allow_insecure_http=True,
        version=OADRVersion.OADR_310,
    )


def dump(model: Any) -> Any:
    if isinstance(model, tuple | list):
        return [dump(m) for m in model]
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


def paged(fetch: Any) -> list[Any]:
    """Every object of a listing, page by page (``fetch(PaginationFilter)``)."""
    from openadr3_client.oadr310._vtn.interfaces.filters import PaginationFilter

    found: list[Any] = []
    while True:
        page = fetch(PaginationFilter(skip=len(found), limit=PAGE))
        found.extend(page)
        if len(page) < PAGE:
            return found


def event_fields(args: argparse.Namespace, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The event's fields (library names) from the options, over ``base`` (an existing event)."""
    from openadr3_client._models.common.interval import Interval
    from openadr3_client._models.common.interval_period import IntervalPeriod
    from openadr3_client.oadr310.models.event.event_payload import EventPayload, EventPayloadDescriptor

    fields = dict(base or {})
    if args.name is not None:
        fields["event_name"] = args.name
    if args.priority is not None:
        fields["priority"] = args.priority
    if args.target is not None:
        fields["targets"] = tuple(args.target)
    if args.start is not None or args.duration is not None:
        old = fields.get("interval_period")
        start = args.start if args.start is not None else (old.start if old else None)
        duration = args.duration if args.duration is not None else (old.duration if old else None)
        if start is None or duration is None:
            raise UtilityError("an event needs both --start and --duration")
        fields["interval_period"] = IntervalPeriod(start=start, duration=duration)
    payload_type = args.type
    if payload_type is None and fields.get("payload_descriptors"):
        payload_type = str(fields["payload_descriptors"][0].payload_type)
    if args.value is not None:
        payload_type = payload_type or "IMPORT_CAPACITY_LIMIT"
        fields["intervals"] = tuple(
            Interval[EventPayload](id=i, payloads=(EventPayload(type=payload_type, values=(value,)),))
            for i, value in enumerate(args.value))
    elif args.type is not None and fields.get("intervals"):
        fields["intervals"] = tuple(
            Interval[EventPayload](id=iv.id, interval_period=iv.interval_period,
                                   payloads=tuple(EventPayload(type=args.type, values=p.values) for p in iv.payloads))
            for iv in fields["intervals"])
    if args.type is not None or args.units is not None or (args.value is not None and "payload_descriptors" not in fields):
        units = args.units if args.units is not None else ("KW" if payload_type in CAPACITY_TYPES else None)
        fields["payload_descriptors"] = (EventPayloadDescriptor(payload_type=payload_type, units=units),)
    return fields


def number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def duration(text: str) -> timedelta:
    from pydantic import TypeAdapter

    return TypeAdapter(timedelta).validate_python(text)


def run(args: argparse.Namespace) -> Any:
    if args.command == "hash-secret":
        # The VTN checks client secrets against argon2 PHC strings (argon2 crate), as in
        # its src/api/fixtures/users.sql; cryptography (a dependency of the library) makes them.
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        hashes = []
        for line in sys.stdin.read().splitlines():
            kdf = Argon2id(salt=os.urandom(16), length=32, iterations=2, lanes=1, memory_cost=19 * 1024)
            hashes.append(kdf.derive_phc_encoded(line.encode()))
        return {"hashes": hashes}

    bl = client()
    if args.command == "create-program":
        from openadr3_client.oadr310.models.program.program import NewProgram

        program = NewProgram(program_name=args.name, targets=tuple(args.target) if args.target else None)
        return dump(bl.programs.create_program(program))

    if args.command == "create-event":
        from openadr3_client.oadr310.models.event.event import NewEvent

        if args.start is None or args.duration is None or not args.value:
            raise UtilityError("create-event needs --start, --duration and at least one --value")
        return dump(bl.events.create_event(NewEvent(program_id=args.program_id, **event_fields(args))))

    if args.command == "update-event":
        from openadr3_client.oadr310.models.event.event import EventUpdate

        existing = bl.events.get_event_by_id(args.event_id)
        keep = ("program_id", "event_name", "priority", "targets", "payload_descriptors", "report_descriptors",
                "interval_period", "intervals", "duration")
        base = {name: getattr(existing, name) for name in keep if getattr(existing, name) is not None}
        return dump(bl.events.update_event_by_id(args.event_id, EventUpdate(**event_fields(args, base))))

    if args.command == "delete-event":
        if args.with_reports:
            # openleadr-vtn refuses to delete an event that has reports (409, a foreign key),
            # and the library's BL client has no call to delete reports: delete them with the
            # library's own authenticated session (the BL has the write_reports_bl scope).
            reports = paged(lambda page: bl.reports.get_reports(pagination=page, program_id=None,
                                                                event_id=args.event_id, client_name=None))
            for report in reports:
                response = bl.reports.session.delete(f"{bl.reports.base_url}/reports/{report.id}")
                response.raise_for_status()
        return dump(bl.events.delete_event_by_id(args.event_id))

    if args.command == "list-events":
        return dump(paged(lambda page: bl.events.get_events(target=None, pagination=page,
                                                            program_id=args.program_id)))

    if args.command == "create-ven":
        from openadr3_client.oadr310.models.ven.ven import NewVenBlRequest, VenUpdateBlRequest

        targets = tuple(args.target) if args.target else None
        existing = [v for v in paged(lambda page: bl.vens.get_vens(ven_name=None, target=None, pagination=page))
                    if v.client_id == args.client_id]
        if existing:
            update = VenUpdateBlRequest(ven_name=args.ven_name, client_id=args.client_id, targets=targets,
                                        attributes=existing[0].attributes)
            return dump(bl.vens.update_ven_by_id(existing[0].id, update))
        return dump(bl.vens.create_ven(NewVenBlRequest(ven_name=args.ven_name, client_id=args.client_id,
                                                       targets=targets)))

    if args.command == "list-reports":
        return dump(paged(lambda page: bl.reports.get_reports(pagination=page, program_id=args.program_id,
                                                              event_id=args.event_id,
                                                              client_name=args.client_name)))
    raise UtilityError(f"unknown command {args.command}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="The utility (BL) side of the OpenADR tests, over openadr3-client.")
    sub = p.add_subparsers(dest="command", required=True)

    prog = sub.add_parser("create-program")
    prog.add_argument("--name", required=True)
    prog.add_argument("--target", action="append")

    for name in ("create-event", "update-event"):
        ev = sub.add_parser(name)
        if name == "create-event":
            ev.add_argument("--program-id", required=True)
        else:
            ev.add_argument("--event-id", required=True)
        ev.add_argument("--name")
        ev.add_argument("--priority", type=int)
        ev.add_argument("--target", action="append", help="repeat for several; replaces the event's targets")
        ev.add_argument("--start", help="intervalPeriod.start, ISO 8601 with a time zone")
        ev.add_argument("--duration", type=duration, help="intervalPeriod.duration (of each interval), e.g. PT1H")
        ev.add_argument("--type", help="payload type (create-event default: IMPORT_CAPACITY_LIMIT)")
        ev.add_argument("--units", help="payload descriptor units (default KW for capacity types)")
        ev.add_argument("--value", type=number, action="append", help="one interval per value, in order")

    delete = sub.add_parser("delete-event")
    delete.add_argument("--event-id", required=True)
    delete.add_argument("--with-reports", action="store_true",
                        help="delete the event's reports first (the VTN refuses to delete an event that has some)")

    sub.add_parser("list-events").add_argument("--program-id")

    ven = sub.add_parser("create-ven")
    ven.add_argument("--ven-name", required=True)
    ven.add_argument("--client-id", required=True)
    ven.add_argument("--target", action="append")

    rep = sub.add_parser("list-reports")
    rep.add_argument("--program-id")
    rep.add_argument("--event-id")
    rep.add_argument("--client-name")

    sub.add_parser("hash-secret")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result = run(args)
    except UtilityError as exc:
        print(json.dumps({"error": str(exc), "status": exc.status, "body": exc.body}), file=sys.stderr)
        return 1
    except Exception as exc:  # an HTTP error of the library (requests), a validation error, ...
        response = getattr(exc, "response", None)
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}",
                          "status": getattr(response, "status_code", None),
                          "body": getattr(response, "text", "")}), file=sys.stderr)
        return 1
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
