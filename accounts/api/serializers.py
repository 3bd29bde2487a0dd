from django.conf import settings
from rest_framework import serializers

from accounts.models import Membership


class UserOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    full_name = serializers.CharField()


class TeamOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.SlugField()
    time_zone = serializers.CharField()
    my_role = serializers.ChoiceField(
        choices=[*Membership.Role.choices, ("api_key", "API key")],
        help_text="The caller's role; `api_key` when the caller is a team API key.",
    )
    member_count = serializers.IntegerField()


class TeamCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    time_zone = serializers.CharField(max_length=64, default=lambda: settings.TIME_ZONE)
    role = serializers.ChoiceField(
        choices=Membership.Role.choices, default=Membership.Role.PRODUCT_OWNER
    )


class MeOutputSerializer(UserOutputSerializer):
    teams = TeamOutputSerializer(many=True)
