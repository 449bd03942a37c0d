from django.db import connection
from django.http import JsonResponse
from django.urls import path


def one_query(request):
    # One small read from a table every migrated portal database has.
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, app, name FROM django_migrations ORDER BY id LIMIT 1")
        row = cursor.fetchone()
    return JsonResponse({"id": row[0], "app": row[1], "name": row[2]})


urlpatterns = [path("bare/", one_query)]
