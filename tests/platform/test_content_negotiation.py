"""The project's content negotiation chooses what DRF's own chooses, for every kind of request."""

import itertools

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from yahealthy_crm.api import JsonFirstContentNegotiation

RENDERER_SETS = [
    [JSONRenderer()],  # the webhooks
    [JSONRenderer(), BrowsableAPIRenderer()],  # the project's default
    [BrowsableAPIRenderer(), JSONRenderer()],
]
ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/json; indent=4",
    "application/*",
    "text/html",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "application/xml",
    "",
]
QUERIES = ["", "format=json", "format=api", "format=xml", "limit=5"]
SUFFIXES = [None, "json", "api"]


def _choice(negotiation, renderers, accept, query, suffix):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/api/crm/users?{query}" if query else "/api/crm/users", **headers))
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers, suffix)
    except (NotAcceptable, Http404) as refused:
        return type(refused).__name__
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("renderers", RENDERER_SETS, ids=["json", "json+browsable", "browsable+json"])
def test_the_same_choice_as_drf(renderers):
    cases = list(itertools.product(ACCEPTS, QUERIES, SUFFIXES))
    ours = [_choice(JsonFirstContentNegotiation(), renderers, *case) for case in cases]
    theirs = [_choice(DefaultContentNegotiation(), renderers, *case) for case in cases]
    assert ours == theirs
    assert ("JSONRenderer", "application/json") in ours  # the fast choice was made
    assert "NotAcceptable" in ours  # and refusals came from DRF
