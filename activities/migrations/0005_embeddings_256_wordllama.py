# The offline embedder becomes WordLlama (256-d, shipped inside its wheel) and OpenAI is asked for
# 256 dimensions: the vector column goes from 384 to 256. Vectors of the old (hashing) embedder are
# cleared first: they cannot be cast to the new size and must not be mixed with the new space.
# `manage.py embed_activities` (part of `make run`) embeds every row again.

import pgvector.django.vector
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('activities', '0004_embed_pending_index'),
    ]

    operations = [
        migrations.RunSQL(
            "UPDATE crm_user_activities SET embedding = NULL WHERE embedding IS NOT NULL",
            reverse_sql="UPDATE crm_user_activities SET embedding = NULL WHERE embedding IS NOT NULL",
        ),
        # PostgreSQL rebuilds the column's indexes (HNSW, per-user covering index) with the new type.
        migrations.AlterField(
            model_name='useractivity',
            name='embedding',
            field=pgvector.django.vector.VectorField(blank=True, dimensions=256, null=True),
        ),
        migrations.CreateModel(
            name='EmbeddingSpace',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=128)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'db_table': 'crm_embedding_space',
            },
        ),
    ]
