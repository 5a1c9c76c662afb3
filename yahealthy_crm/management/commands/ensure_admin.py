import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the local admin account once (random password kept in var/admin_credentials) and print it."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        credentials_file = settings.VAR_DIR / "admin_credentials"
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, email="", password=password)
            credentials_file.parent.mkdir(parents=True, exist_ok=True)
            credentials_file.touch(mode=0o600)
            credentials_file.write_text(f"{username}\n{password}\n")
        elif credentials_file.exists() and credentials_file.read_text().split("\n")[0] == username:
            password = credentials_file.read_text().split("\n")[1]
        else:
            self.stdout.write(
                f"Admin user '{username}' already exists; set a new password with "
                f"`python manage.py changepassword {username}`."
            )
            return
        self.stdout.write(self.style.SUCCESS(f"Admin login: username '{username}', password '{password}'"))
