"""settings.toml + DUNNING_* → one frozen settings object; errors name the key's path.

section (the base of every section), policy (the policy's sections), model (the Settings object and
the other sections), stripe (the [stripe] section),
loading (the file and the environment read, relative paths resolved).
"""

from __future__ import annotations

from dunning.settings.loading import load_settings, resolve_paths, settings_path
from dunning.settings.model import (
    SECRET_PATHS,
    BouncesSettings,
    BrandingSettings,
    DatabaseSettings,
    DeliverySettings,
    DkimSettings,
    I18nSettings,
    LinksSettings,
    ReportSettings,
    SenderSettings,
    ServeSettings,
    Settings,
    SmtpSettings,
    StudioSettings,
)
from dunning.settings.policy import (
    BalanceSettledSettings,
    CardChargeFailedSettings,
    CardExpiringSettings,
    DeletionSettings,
    PastDueSettings,
    PendingDeletionSettings,
    PolicySettings,
    SegmentSettings,
    ServiceCancelledSettings,
)
from dunning.settings.section import Section
from dunning.settings.stripe import StripeMetadataKeys, StripeSettings

__all__ = ["SECRET_PATHS", "Section", "DatabaseSettings", "PolicySettings", "CardChargeFailedSettings",
           "PastDueSettings", "CardExpiringSettings", "BalanceSettledSettings", "SegmentSettings",
           "ServiceCancelledSettings", "DeletionSettings", "PendingDeletionSettings", "SmtpSettings",
           "SenderSettings", "BrandingSettings", "LinksSettings", "ServeSettings",
           "ReportSettings", "DeliverySettings", "I18nSettings", "StudioSettings",
           "BouncesSettings", "DkimSettings", "StripeMetadataKeys", "StripeSettings", "Settings",
           "settings_path", "load_settings", "resolve_paths"]
