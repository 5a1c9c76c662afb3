from django.core.management.base import BaseCommand, CommandError

from yahealthy_crm.models import ServiceApiKey


class Command(BaseCommand):
    help = "Create a service API key for the app backend and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="A label for the key, e.g. 'app-backend-prod'.")

    def handle(self, *args, name: str, **options):
        name = name.strip()
        if not name or len(name) > 50:
            raise CommandError("The name must be 1 to 50 characters.")
        api_key, key = ServiceApiKey.objects.create_key(name=name)
        self.stdout.write(f"Created service API key '{api_key.name}' (prefix {api_key.prefix}).")
        self.stdout.write("Store it now; it cannot be shown again:")
        self.stdout.write(key)
