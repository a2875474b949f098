-- Dispatch schema, version 18: client certificates that deliveries present (mutual TLS).
--
-- `tls_client_certificate` is what the API shows: subject, issuer, not_after and
-- fingerprint_sha256, computed once when the certificate is written. The PEM chain is
-- public; the private key is sealed like the signing secrets when DISPATCH_SECRETS_KEY
-- is set. All three are set together or none is.
ALTER TABLE subscriptions
  ADD COLUMN tls_client_certificate jsonb,
  ADD COLUMN tls_client_cert_pem text,
  ADD COLUMN tls_client_key text,
  ADD CONSTRAINT subscriptions_tls_client_certificate_whole CHECK (
    (tls_client_certificate IS NULL) = (tls_client_cert_pem IS NULL)
    AND (tls_client_cert_pem IS NULL) = (tls_client_key IS NULL));
