# Conversations (docs/coach.md "Conversations"): every coaching session becomes a turn of a
# conversation; sessions stored before this migration each become a conversation of one turn.
# Coaching-session vectors go to 256 dimensions like the activities' (activities 0005).

import django.db.models.deletion
import pgvector.django.vector
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('coaching', '0006_retention_intelligence'),
        ('profiles', '0003_retention_intelligence'),
    ]

    operations = [
        migrations.CreateModel(
            name='CoachingConversation',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('last_turn_at', models.DateTimeField()),
                ('user', models.ForeignKey(db_column='user_id', db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='coaching_conversations', to='profiles.crmuserprofile', to_field='user_id')),
            ],
            options={
                'db_table': 'crm_coaching_conversations',
                'ordering': ['-last_turn_at'],
                'indexes': [models.Index(fields=['user', '-last_turn_at'], name='crm_conversation_user_last_idx')],
            },
        ),
        migrations.AddField(
            model_name='coachingsession',
            name='conversation',
            field=models.ForeignKey(null=True, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='turns', to='coaching.coachingconversation'),
        ),
        # One conversation per existing session; its id derived from the session id, so one UPDATE links them.
        migrations.RunSQL(
            """
            INSERT INTO crm_coaching_conversations (id, user_id, created_at, last_turn_at)
            SELECT md5('crm-coaching-session:' || id)::uuid, user_id, created_at, created_at
            FROM crm_coaching_sessions WHERE conversation_id IS NULL;
            UPDATE crm_coaching_sessions SET conversation_id = md5('crm-coaching-session:' || id)::uuid
            WHERE conversation_id IS NULL;
            SET CONSTRAINTS ALL IMMEDIATE;
            """,
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name='coachingsession',
            name='conversation',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='turns', to='coaching.coachingconversation'),
        ),
        migrations.AddIndex(
            model_name='coachingsession',
            index=models.Index(fields=['conversation', '-created_at'], name='crm_session_conversation_idx'),
        ),
        migrations.AddField(
            model_name='coachingsession',
            name='topics',
            field=models.JSONField(blank=True, default=list, help_text="What the turn was about (follow-ups such as 'and carbs?' resolve to it)."),
        ),
        migrations.RunSQL(
            "UPDATE crm_coaching_sessions SET embedding = NULL WHERE embedding IS NOT NULL",
            reverse_sql="UPDATE crm_coaching_sessions SET embedding = NULL WHERE embedding IS NOT NULL",
        ),
        migrations.AlterField(
            model_name='coachingsession',
            name='embedding',
            field=pgvector.django.vector.VectorField(blank=True, dimensions=256, null=True),
        ),
    ]
