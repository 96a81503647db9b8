from django.db import models


class BudgetThreshold(models.IntegerChoices):
    WARNING = 80, "80 %"
    EXCEEDED = 100, "100 %"
