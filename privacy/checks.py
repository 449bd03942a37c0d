from django.apps import apps
from django.core import checks

from .registry import declaration_for, model_field_names

PROJECT_APPS = ("portal", "security", "privacy", "accounts", "licensing", "billing")


@checks.register(checks.Tags.models)
def check_every_field_is_classified(app_configs=None, **kwargs):
    errors = []
    for app_config in apps.get_app_configs():
        if app_config.label not in PROJECT_APPS:
            continue
        for model in app_config.get_models():
            declaration = declaration_for(model)
            if declaration is None:
                errors.append(
                    checks.Error(
                        f"{model._meta.label} is not declared in the personal-data registry.",
                        hint="Call privacy.registry.declare() next to the model and classify every field.",
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
