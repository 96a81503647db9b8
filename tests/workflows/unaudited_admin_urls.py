"""An admin site with one unaudited admin, for the test that proves the audit walk can fail."""
from django.contrib import admin
from django.urls import path

from dns.models import Zone

site = admin.AdminSite(name="admin")
site.register(Zone, admin.ModelAdmin)
urlpatterns = [path("admin/", site.urls)]
