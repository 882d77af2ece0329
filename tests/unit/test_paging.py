"""workflowsite/paging.py: counts that stop at a cap, and pages past it that stay reachable."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from workflowsite.paging import EstimatedCountPaginator, indexed_distinct


class SmallCap(EstimatedCountPaginator):
    cap = 10


@pytest.fixture
def users(db):
    User.objects.bulk_create([User(username=f"user{i:02d}", is_active=i % 2 == 0) for i in range(60)])
    return User.objects.filter(username__startswith="user").order_by("username")


def test_a_count_under_the_cap_is_exact(users):
    paginator = SmallCap(users.filter(username__lt="user08"), 5)
    assert paginator.count == 8 and paginator.count_prefix == ""
    assert paginator.num_pages == 2


def test_past_the_cap_the_count_says_at_least_and_next_pages_still_open(users):
    paginator = SmallCap(users, 5)
    page = paginator.get_page(1)
    assert paginator.count == 10 and paginator.count_prefix == "at least "
    assert [u.username for u in page.object_list] == [f"user{i:02d}" for i in range(5)]
    assert page.has_next()

    deep = SmallCap(users, 5).get_page(7)  # rows 30-34: counted far enough to know page 8 exists
    assert deep.number == 7
    assert [u.username for u in deep.object_list] == [f"user{i:02d}" for i in range(30, 35)]
    assert deep.has_next() and deep.has_previous()

    last = SmallCap(users, 5).get_page(12)
    assert [u.username for u in last.object_list] == [f"user{i:02d}" for i in range(55, 60)]
    assert not last.has_next() and last.paginator.count == 60 and last.paginator.count_prefix == ""


def test_distinct_values_through_the_index(users):
    assert indexed_distinct(User, "username")[:3] == ["user00", "user01", "user02"]
