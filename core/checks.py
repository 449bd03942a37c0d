from django.apps import apps
from django.conf import settings
from django.core import checks

from .crypto import KeyConfigurationError, master_keys
from .registry import declaration_for, model_field_names


@checks.register(checks.Tags.models)
def check_every_field_is_classified(app_configs=None, **kwargs):
    errors = []
    for app_config in apps.get_app_configs():
        # The roof names the project's apps (settings.PROJECT_APPS); the ground names none.
        if app_config.label not in settings.PROJECT_APPS:
            continue
        for model in app_config.get_models():
            declaration = declaration_for(model)
            if declaration is None:
                errors.append(
                    checks.Error(
                        f"{model._meta.label} is not declared in the personal-data registry.",
                        hint="Call core.registry.declare() next to the model and classify every field.",
                        obj=model,
                        id="privacy.E001",
                    )
                )
                continue
            names = set(model_field_names(model))
            for name in sorted(names):
                if declaration.classification(name) is False:
                    errors.append(
                        checks.Error(
                            f"{model._meta.label}.{name} is not classified as personal or not personal.",
                            hint="Add it to personal={...} or not_personal=[...] in its declare() call.",
                            obj=model,
                            id="privacy.E002",
                        )
                    )
            for name in sorted((set(declaration.personal) | declaration.not_personal) - names):
                errors.append(
                    checks.Error(
                        f"{model._meta.label} declares '{name}', which is not a field.",
                        obj=model,
                        id="privacy.E003",
                    )
                )
    return errors


@checks.register(checks.Tags.security, deploy=False)
def check_encryption_keys(app_configs=None, **kwargs):
    try:
        master_keys()
    except KeyConfigurationError as exc:
        return [checks.Error(str(exc), id="portal.E001")]
    if not settings.AUDIT_HMAC_KEY or not settings.BLIND_INDEX_KEY:
        return [checks.Error("AUDIT_HMAC_KEY and BLIND_INDEX_KEY must be set.", id="portal.E002")]
    return []
