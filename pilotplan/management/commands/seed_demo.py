from django.core.management.base import BaseCommand

from pilotplan.demo import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Create or refresh the demo teams, users (one per role per team) and plans. Idempotent."

    def handle(self, *args: object, **options: object) -> None:
        logins = seed_demo()
        self.stdout.write(
            self.style.SUCCESS(f"Demo ready. Password for every login: {DEMO_PASSWORD}")
        )
        for email, team, role in logins:
            self.stdout.write(f"  {email:<28} {team:<12} {role}")
