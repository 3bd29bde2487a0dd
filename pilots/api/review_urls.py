"""(placeholder: being written)"""

urlpatterns: list = []
