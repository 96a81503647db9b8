import pytest

from dns.ownership import NameOwnedElsewhere, Owner, ensure_owned, parse_owner
from dns.providers import RRset

NAME = "api.shop.internal.test."
MARKER = "_slipway-owner.api.shop.internal.test."
OURS = Owner(project="shop", application="api", environment="prod")


def observed(*rrsets: RRset) -> dict:
    return {rrset.key: rrset for rrset in rrsets}


def test_the_ownership_record_reads_back_as_its_owner():
    assert OURS.txt == '"heritage=slipway,application=shop/api,environment=prod"'
    assert parse_owner(OURS.txt) == OURS
    assert parse_owner('"heritage=external-dns,owner=default"') is None
    assert parse_owner('"v=spf1 -all"') is None


@pytest.mark.parametrize(
    "state",
    [
        observed(),
        observed(RRset(MARKER, "TXT", 60, (OURS.txt,))),
        observed(RRset(NAME, "A", 60, ("10.0.0.1",)), RRset(MARKER, "TXT", 60, (OURS.txt,))),
        observed(RRset("other.internal.test.", "A", 60, ("10.0.0.1",))),
    ],
    ids=["free", "only-our-marker", "ours", "someone-else-next-door"],
)
def test_a_free_name_or_our_own_may_be_changed(state):
    ensure_owned(name=NAME, owner=OURS, observed=state)


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (observed(RRset(NAME, "A", 60, ("192.0.2.1",))),
         "it holds A 192.0.2.1 and has no ownership record _slipway-owner.api.shop.internal.test. TXT"),
        (observed(RRset(NAME, "CNAME", 60, ("elsewhere.example.",)), RRset(MARKER, "TXT", 60, ('"hello"',))),
         'its ownership record _slipway-owner.api.shop.internal.test. TXT holds "hello"'),
        (observed(RRset(NAME, "A", 60, ("10.0.0.1",)),
                  RRset(MARKER, "TXT", 60, (Owner("shop", "api", "staging").txt,))),
         "its ownership record says it is published for shop/api in staging"),
        (observed(RRset(MARKER, "TXT", 60, (Owner("blog", "api", "prod").txt,))),
         "published for blog/api in prod"),
    ],
    ids=["foreign-a", "foreign-marker", "other-environment", "other-project"],
)
def test_a_name_held_by_something_else_is_refused_with_what_holds_it(state, reason):
    with pytest.raises(NameOwnedElsewhere) as error:
        ensure_owned(name=NAME, owner=OURS, observed=state)
    assert str(error.value).startswith("DNS name api.shop.internal.test is owned by something else: ")
    assert reason in str(error.value)
