"""`dunning link verify TOKEN` / `dunning link sign`: inspect and make settlement-link tokens."""

from __future__ import annotations

import argparse
import json

from dunning.errors import ExitCode
from dunning.links import require_signing_key, settlement_url, token_from, verify_token
from dunning.settings import load_settings

NAME = "link"
HELP = "verify a settlement-link token (or URL) and print its ids, or sign a new one"


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check a token or settlement URL; print its ids as JSON",
                                description="Exit 0 and print the ids when valid; otherwise say why "
                                            "(expired, tampered, unknown key, malformed) and exit 65.")
    verify.add_argument("token", metavar="TOKEN", help="the token, or the whole settlement URL")
    sign = actions.add_parser("sign", help="print a signed settlement URL for these ids")
    sign.add_argument("--account", required=True, metavar="ID", help="the account id the link settles")
    sign.add_argument("--payment-method", required=True, metavar="ID",
                      help="the payment method id the link updates or charges")
    sign.add_argument("--key", required=True, help="the notice key the link is for")


def run(args: argparse.Namespace) -> int:
    links = load_settings(args.settings).links
    if args.action == "sign":
        print(settlement_url(links, account=args.account, payment_method=args.payment_method,
                             key=args.key))
        return ExitCode.OK
    claims = verify_token(token_from(args.token.strip(), links), require_signing_key(links),
                          max_age_days=links.max_age_days)
    print(json.dumps({"account": claims.account, "payment_method": claims.payment_method,
                      "key": claims.key, "issued_at": claims.issued_at.isoformat()}, indent=2))
    return ExitCode.OK
