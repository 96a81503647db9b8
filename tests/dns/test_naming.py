import pytest

from dns import naming


def render(pattern="{application}.{project}.{zone}", *, application="api", project="shop", environment="prod",
           zone="internal.example."):
    return naming.render_name(pattern, application=application, project=project, environment=environment, zone=zone)


@pytest.mark.parametrize(
    ("pattern", "zone", "expected"),
    [
        ("{application}.{project}.{zone}", "internal.example.", "api.shop.internal.example."),
        ("{application}.{project}.{environment}.{zone}", "internal.example", "api.shop.prod.internal.example."),
        ("{application}-{environment}.{zone}.", "Internal.Example.", "api-prod.internal.example."),
        ("{application}.Apps.{zone}", "internal.example.", "api.apps.internal.example."),
    ],
)
def test_patterns_render_canonical_names(pattern, zone, expected):
    assert render(pattern, zone=zone) == expected
    assert naming.hostname(expected) == expected[:-1]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("{project}.{zone}", "must contain {application}"),
        ("{application}.{project}", "must end with '.{zone}'"),
        ("{application}.{zone}.example", "must end with '.{zone}'"),
        ("{application}.{team}.{zone}", "uses {team}; only these placeholders are allowed: {application} {project}"),
        ("{application.upper}.{zone}", "uses {application.upper}"),
        ("{application!r}.{zone}", "uses {application}"),
        ("{application:>10}.{zone}", "uses {application}"),
        ("{application.{zone}", "is malformed"),
    ],
)
def test_bad_patterns_are_refused_with_the_reason(pattern, reason):
    with pytest.raises(ValueError) as error:
        render(pattern)
    assert reason in str(error.value)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"pattern": "{application}_{project}.{zone}"}, "label 'api_shop': labels consist of letters, digits and '-'"),
        ({"pattern": "{application}..{zone}"}, "empty label"),
        ({"pattern": "{application}-{project}.{zone}", "application": "a" * 40, "project": "p" * 30},
         "of 71 characters; at most 63"),
        ({"zone": "bad_zone.example."}, "zone name 'bad_zone.example'"),
        ({"zone": ""}, "zone name is empty"),
    ],
)
def test_names_that_are_not_rfc_1123_are_refused(kwargs, reason):
    with pytest.raises(ValueError) as error:
        render(**kwargs)
    assert reason in str(error.value)


def test_a_name_must_leave_room_for_its_ownership_record():
    zone = ".".join(["z" * 60] * 3) + "."  # 182 characters
    fits = render("{application}.{zone}", application="a" * 55, zone=zone)
    assert len(naming.hostname(naming.ownership_name(fits))) <= naming.MAX_NAME_LENGTH

    with pytest.raises(ValueError, match="at most 238 are allowed, leaving room for its ownership record"):
        render("{application}.{zone}", application="a" * 56, zone=zone)


def test_canonical_names_are_lowercase_with_the_trailing_dot():
    assert naming.canonical_name("Api.Example.COM") == "api.example.com."
    assert naming.canonical_name("api.example.com.") == "api.example.com."
    with pytest.raises(ValueError, match="253"):
        naming.canonical_name(".".join(["a" * 63] * 4))


@pytest.mark.parametrize(
    ("ingress", "record"),
    [
        ("10.0.0.10", ("A", "10.0.0.10")),
        (" 192.168.1.1 ", ("A", "192.168.1.1")),
        ("LB-1.elb.example.com", ("CNAME", "lb-1.elb.example.com.")),
        ("ingress.example.com.", ("CNAME", "ingress.example.com.")),
    ],
)
def test_the_ingress_address_gives_an_a_or_a_cname(ingress, record):
    assert naming.address_record(ingress) == record


@pytest.mark.parametrize(
    ("ingress", "reason"),
    [("", "no ingress address"), ("fd00::1", "IPv6"), ("not a host", "ingress hostname")],
)
def test_unusable_ingress_addresses_are_refused(ingress, reason):
    with pytest.raises(ValueError, match=reason):
        naming.address_record(ingress)


def test_collisions_name_every_owner_of_a_shared_name():
    names = {
        "shop/api in prod": "api.shop.internal.example.",
        "shop/api in staging": "api.shop.internal.example.",
        "shop/web in prod": "web.shop.internal.example.",
    }
    assert naming.find_collisions(names) == {
        "api.shop.internal.example.": ["shop/api in prod", "shop/api in staging"],
    }
    assert naming.find_collisions({"a": "x.example.", "b": "y.example."}) == {}
