"""The ledger: what payments and operators do to an account, its box and its customer.

- `crediting`: `credit_payment` turns a payment into credit, token(s) and a receipt in
  the caller's transaction, audited; the caller sends the receipt once it commits.
- `operator`: `operator_token` issues a code an operator asked for, adjusts the account
  to match and writes the SMS carrying it; `confirm_entered` records a box's count.
- `locks`: `hold_account` locks an account and then its box, once per transaction; the
  functions above take the held rows rather than locking them again.

Codes themselves come from `paygo.tokens` (OpenPAYGO), what a payment buys from
`paygo.credit` (pure rules), and texts from `paygo.texts.receipts`.
"""
