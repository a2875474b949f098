-- How a subscription's endpoint wants Dispatch to authenticate (basic, bearer, OAuth 2.0 client
-- credentials): what the API shows in `auth`, and the secret part (password, token, client
-- secret) apart in `auth_secret`, sealed with DISPATCH_SECRETS_KEY when it is set.
ALTER TABLE subscriptions
  ADD COLUMN auth jsonb,
  ADD COLUMN auth_secret text,
  ADD CONSTRAINT subscriptions_auth_secret CHECK ((auth IS NULL) = (auth_secret IS NULL));
