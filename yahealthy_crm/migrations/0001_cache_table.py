from django.db import migrations

# The shared cache (rate-limit counters) used without Redis; same layout as `createcachetable`.
CREATE = """
CREATE TABLE IF NOT EXISTS crm_cache (
    cache_key varchar(255) NOT NULL PRIMARY KEY,
    value text NOT NULL,
    expires timestamp with time zone NOT NULL
);
CREATE INDEX IF NOT EXISTS crm_cache_expires ON crm_cache (expires);
"""


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []
    operations = [migrations.RunSQL(CREATE, reverse_sql="DROP TABLE IF EXISTS crm_cache;")]
