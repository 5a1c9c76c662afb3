from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """For rows only the services write (sync engine, coach): staff read them, never edit them in place,
    so every change keeps its audit row and its conflict rules."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
