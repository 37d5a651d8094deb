"""The two pages a link can land on instead of a redirect: expired (in the account's language) and invalid."""

from __future__ import annotations

from babel.support import Translations
from markupsafe import Markup

from dunning.i18n.catalogs import LocaleChoice
from dunning.settings import Settings

__all__ = ["expired_page", "invalid_page"]

_STYLE = ("body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:24px;color:#1f2933;background:#f5f7fa}"
          "main{max-width:32rem;margin:0 auto;background:#fff;border-radius:8px;padding:24px}"
          "h1{font-size:1.4rem;margin-top:0}a{color:#0b5cad}li{margin:.5rem 0}")


def _page(lang: str, direction: str, title: str, body: Markup) -> str:
    return str(Markup('<!doctype html><html lang="{}" dir="{}"><head><meta charset="utf-8">'
                      '<meta name="viewport" content="width=device-width,initial-scale=1">'
                      '<meta name="robots" content="noindex"><title>{}</title><style>{}</style></head>'
                      '<body><main><h1>{}</h1>{}</main></body></html>')
               .format(lang, direction, title, Markup(_STYLE), title, body))


def expired_page(settings: Settings, choice: LocaleChoice, translations: Translations) -> str:
    """The expired link's page: what happened and how to pay anyway; no customer data."""
    gettext = translations.gettext
    ways = [Markup('<li><a href="{}">{}</a></li>').format(settings.branding.support_url,
                                                          gettext("Contact support"))]
    if settings.sender.reply_to:
        ways.append(Markup('<li>{} <a href="mailto:{}" dir="ltr">{}</a></li>').format(
            gettext("Write to us:"), settings.sender.reply_to, settings.sender.reply_to))
    if settings.links.portal_url:
        ways.insert(0, Markup('<li><a href="{}">{}</a></li>').format(settings.links.portal_url,
                                                                     gettext("Open the billing portal")))
    body = Markup("<p>{}</p><p>{}</p><ul>{}</ul>").format(
        gettext("For your security, the links in our emails work for a limited time, and this one has expired."),
        gettext("You can still pay your balance or update your payment method:"), Markup("").join(ways))
    return _page(choice.lang, choice.dir, gettext("This link has expired"), body)


def invalid_page() -> str:
    """The page of a tampered or malformed link: it says nothing about why."""
    return _page("en", "ltr", "This link is not valid",
                 Markup("<p>{}</p>").format("Please use the link from the email exactly as you received it."))
