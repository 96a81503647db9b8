"""Seed the middleware catalog and the global ``finance`` group."""
from django.db import migrations

BASE_IMAGES = [
    # name, display name, image, app path, config path, port, health path ('' = TCP check)
    ("tomcat", "Apache Tomcat 10.1", "slipway/base/tomcat:10.1", "/usr/local/tomcat/webapps", "/usr/local/tomcat/conf/app", 8080, "/"),
    ("jboss", "WildFly (JBoss) 34", "slipway/base/wildfly:34", "/opt/jboss/wildfly/standalone/deployments", "/opt/jboss/wildfly/standalone/configuration/app", 8080, "/"),
    ("nginx", "NGINX 1.27", "slipway/base/nginx:1.27", "/usr/share/nginx/html", "/etc/nginx/conf.d", 8080, "/"),
    ("redis", "Redis 7.4", "slipway/base/redis:7.4", "/data", "/usr/local/etc/redis", 6379, ""),
    ("zookeeper", "Apache ZooKeeper 3.9", "slipway/base/zookeeper:3.9", "/apache-zookeeper/lib/app", "/conf", 2181, ""),
]


def seed(apps, schema_editor):
    BaseImage = apps.get_model("deployments", "BaseImage")
    for name, display_name, image, app_path, config_path, port, health_path in BASE_IMAGES:
        BaseImage.objects.get_or_create(
            name=name,
            defaults={
                "display_name": display_name, "image": image, "app_path": app_path, "config_path": config_path,
                "default_port": port, "health_path": health_path,
            },
        )
    apps.get_model("auth", "Group").objects.get_or_create(name="finance")


class Migration(migrations.Migration):
    dependencies = [("deployments", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
