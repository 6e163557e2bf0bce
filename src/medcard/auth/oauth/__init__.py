"""The OAuth 2.0 authorization server for apps and integrations (SMART App Launch 2).

``server``      Authlib's grants and endpoints wired to medcard (framework-neutral)
``clients``     registered clients: patient apps (public, PKCE) and systems (confidential)
``store``       authorization codes and tokens, hashed, grouped into grant families
``scopes``      SMART scope narrowing: requested ∩ registered ∩ what the caller may hold
``consent``     scopes in plain words for the consent screen
``revocation``  the revoked-token check the FHIR endpoint makes on every request
``discovery``   ``/.well-known/smart-configuration``
``audit``       one audit append per OAuth request
"""
