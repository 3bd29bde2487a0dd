app_name = "pilots"

# Plan pages arrive with plan authoring (issue "Plan authoring").
urlpatterns: list = []
