"""manage.py churn_backtest: how well the churn model predicts, next to the old heuristic."""

import datetime as dt
import json as _json

from django.core.management.base import BaseCommand, CommandError

from coaching.churn_model import churn_backtest, churn_model_train, horizon_days


class Command(BaseCommand):
    help = (
        "Train on the weekly cutoffs before CUTOFF, predict who has no activity in the following "
        "CHURN_HORIZON_DAYS days, and report ROC AUC, Brier score and the lift of the high band for the "
        "model, the old heuristic and the fallback rule on the same users."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--cutoff", help="YYYY-MM-DD (default: today minus the horizon, the latest with known outcomes)"
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--train", action="store_true", help="then fit and activate a new model version")

    def handle(self, *args, cutoff=None, train=False, **options):
        try:
            cutoff_date = dt.date.fromisoformat(cutoff) if cutoff else None
        except ValueError as exc:
            raise CommandError("--cutoff must be a date, YYYY-MM-DD.") from exc
        result = churn_backtest(cutoff_date=cutoff_date)
        if result is None:
            raise CommandError("No activity before that cutoff: nothing to backtest.")
        if options["json"]:
            self.stdout.write(_json.dumps(result.__dict__, indent=2))
        else:
            self.stdout.write(
                f"cutoff {result.cutoff}, horizon {horizon_days()} days: {result.users} users, "
                f"{result.churn_rate:.1%} without activity afterwards"
            )
            for name in ("model", "heuristic", "fallback_rule"):
                self.stdout.write(f"  {name:14} {getattr(result, name)}")
        if train:
            model = churn_model_train()
            self.stdout.write(f"trained churn model v{model.version} ({model.kind}) on {model.training_rows} rows")
