"""`dunning link verify TOKEN` / `dunning link sign`: inspect and make settlement-link tokens."""

from __future__ import annotations

import argparse
import json

from dunning.errors import ExitCode
from dunning.links import Purpose, require_signing_key, settlement_url, token_from, update_url, verify_token
from dunning.settings import load_settings

__all__ = ["NAME", "HELP", "configure", "run"]

NAME = "link"
HELP = "verify a settlement-link token (or URL) and print its ids, or sign a new one"


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check a token or settlement URL; print its ids as JSON",
                                description="Exit 0 and print the ids when valid; otherwise say why "
                                            "(expired, tampered, unknown key, malformed) and exit 65.")
    verify.add_argument("token", metavar="TOKEN", help="the token, or the whole settlement URL")
    verify.add_argument("--update", action="store_true",
                        help="a payment-method update link (card_expiring), not a settlement link")
    sign = actions.add_parser("sign", help="print a signed settlement URL for these ids")
    sign.add_argument("--account", required=True, metavar="ID", help="the account id the link settles")
    sign.add_argument("--payment-method", required=True, metavar="ID",
                      help="the payment method id the link updates or charges")
    sign.add_argument("--key", required=True, help="the notice key the link is for")
    sign.add_argument("--update", action="store_true", help="sign a payment-method update link instead")


def run(args: argparse.Namespace) -> int:
    links = load_settings(args.settings).links
    if args.action == "sign":
        make = update_url if args.update else settlement_url
        print(make(links, account=args.account, payment_method=args.payment_method, key=args.key))
        return ExitCode.OK
    purpose: Purpose = "update" if args.update else "settlement"
    claims = verify_token(token_from(args.token.strip(), links, purpose), require_signing_key(links),
                          max_age_days=links.max_age_days, purpose=purpose)
    print(json.dumps({"account": claims.account, "payment_method": claims.payment_method,
                      "key": claims.key, "issued_at": claims.issued_at.isoformat()}, indent=2))
    return ExitCode.OK
