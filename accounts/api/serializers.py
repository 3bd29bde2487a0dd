from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Membership, Notification, TeamInvitation


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


class MemberOutputSerializer(serializers.Serializer):
    user = UserOutputSerializer()
    role = serializers.ChoiceField(choices=Membership.Role.choices)
    joined_at = serializers.DateTimeField()


class NotificationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Notification.Kind.choices)
    message = serializers.CharField()
    url = serializers.CharField(help_text="Where to look, on this site; may be empty.")
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True, help_text="Null while unread.")


class NotificationsReadOutputSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many unread notifications were marked read.")


class MemberAddInputSerializer(serializers.Serializer):
    email = serializers.EmailField(
        required=False, help_text="The person's account address (or give `user_id`)."
    )
    user_id = serializers.IntegerField(required=False, min_value=1)
    role = serializers.ChoiceField(choices=Membership.Role.choices)

    def validate(self, attrs: dict) -> dict:
        if ("email" in attrs) == ("user_id" in attrs):
            raise serializers.ValidationError("Give either `email` or `user_id`.")
        return attrs


class MemberRoleInputSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class InvitationInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class InvitationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Membership.Role.choices)
    invited_by = UserOutputSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    state = serializers.SerializerMethodField(help_text="`open` or `expired`.")

    @extend_schema_field(serializers.ChoiceField(choices=["open", "expired"]))
    def get_state(self, obj: TeamInvitation) -> str:
        return obj.state(self.context["now"])
