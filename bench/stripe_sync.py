"""`python -m bench.stripe_sync [N]`: the rate of `dunning sync stripe` against localstripe, and what a
100,000-customer account would take at Stripe's live-mode read limit.

Needs the test extra (localstripe). Creates N customers (default 300), each with a card, a subscription and
its charged first invoice (one in five declined), then times a full sync run as the command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import stripe

from dunning.sources.stripe.client import PAGE, REQUESTS_PER_CUSTOMER

SERVER = Path(__file__).resolve().parent.parent / "tests" / "stripe" / "localstripe_server.py"
LIVE_READS_PER_SECOND = 100  # Stripe's published live-mode limit for read requests
ACCOUNT = 100_000


def _populate(api: stripe.StripeClient, count: int) -> None:
    product = api.v1.products.create(params={"name": "Bench plan"})
    plan = api.v1.plans.create(params={"id": "bench", "product": product.id, "amount": 2500, "currency": "eur",
                                       "interval": "month"})
    for n in range(count):
        customer = api.v1.customers.create(params={"email": f"c{n}@example.com", "name": f"Customer {n}"})
        number = "4000000000000341" if n % 5 == 0 else "4242424242424242"
        method = api.v1.payment_methods.create(params={"type": "card", "card": {
            "number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
        api.v1.payment_methods.attach(method.id, params={"customer": customer.id})
        api.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": method.id}})
        api.v1.subscriptions.create(params={"customer": customer.id, "items": [{"plan": plan.id}]})


def main(count: int) -> int:
    port = 18000 + os.getpid() % 1000
    server = subprocess.Popen([sys.executable, str(SERVER), str(port)])
    try:
        time.sleep(2)
        base = f"http://127.0.0.1:{port}"
        _populate(stripe.StripeClient("sk_test_bench", base_addresses={"api": base}), count)
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "DUNNING_STRIPE__API_BASE": base, "DUNNING_STRIPE__API_KEY": "sk_test_bench",
                   "DUNNING_DATABASE__URL": f"sqlite:///{folder}/bench.sqlite3", "DUNNING_SETTINGS": "/dev/null"}
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "dunning", "sync", "stripe", "--json"], env=env,
                                  capture_output=True, text=True)
            wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()
    summary = json.loads(done.stdout)
    per_customer = REQUESTS_PER_CUSTOMER + 1 / PAGE
    live = ACCOUNT * per_customer / LIVE_READS_PER_SECOND
    print(f"{summary['customers']} customers, {summary['requests']} requests in {summary['seconds']:.2f} s "
          f"({summary['customers'] / summary['seconds']:.0f} customers/s; {wall:.2f} s with the process start)")
    print(f"{ACCOUNT:,} customers at {LIVE_READS_PER_SECOND} reads/s and {per_customer:.2f} requests each: "
          f"{live:,.0f} s ({live / 60:.0f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
