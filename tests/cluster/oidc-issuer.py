#!/usr/bin/env python3
"""A minimal OpenID Connect issuer for the test cluster: serves its discovery document and its signing key (JWKS)
over HTTPS, so kube-apiserver's JWT authenticator (an AuthenticationConfiguration) accepts tokens the tests sign
with the matching private key, as it would accept a Backstage user's sign-in token from a real identity provider.

    oidc-issuer.py PORT CERT KEY MODULUS_HEX KID
"""
import base64
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, cert, key, modulus_hex, kid = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
issuer = f"https://127.0.0.1:{port}"
n = base64.urlsafe_b64encode(bytes.fromhex(modulus_hex)).rstrip(b"=").decode()
documents = {
    "/.well-known/openid-configuration": {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks.json",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    },
    "/jwks.json": {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": "AQAB"}]},
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        document = documents.get(self.path)
        body = json.dumps(document).encode() if document else b"{}"
        self.send_response(200 if document else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
