"""OpenAPI (drf-spectacular) description of our authentication classes."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.APIKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Api-Key",
            "description": "An API key from POST /api/v1/api-keys/. `Authorization: Api-Key <key>` works too.",
        }
