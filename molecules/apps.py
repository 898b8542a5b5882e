from django.apps import AppConfig


class MoleculesConfig(AppConfig):
    name = "molecules"
