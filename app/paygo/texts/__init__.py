"""Every text a customer reads, and how the values in it are written.

- `formats`: the one way money, days, dates and codes are written for customers.
- `placeholders`: the `{name}` syntax every text uses.
- `catalogue`: `flows/texts.yaml`, the SMS the gateway writes on its own (receipts, token
  notices, reminders) in every language; USSD screens and SMS replies are in the flows
  beside it. `paygo flows check` validates both.
- `receipts`, `reminders`: those SMS, rendered from the catalogue.
- `sms`: the GSM-7 alphabet and the length of an SMS.
"""
