from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('profiles', '0003_retention_intelligence'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='crmuserprofile',
            options={
                'ordering': ['-created_at'],
                'permissions': [('export_crmuserprofile', 'Can export user profiles to CSV')],
                'verbose_name': 'user profile',
            },
        ),
    ]
