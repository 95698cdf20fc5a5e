"""The application table's data access, one module per kind of item it stores:

  jobs.py          job records (each job's outcome) and each photo's latest job      -> Jobs, DynamoJobs
  ledger.py        the month's credit counters, and edit attempts with their credits -> CreditLedger, DynamoLedger
  reservations.py  credits held against the budget, and alerts claimed once          -> Reservations, DynamoReservations
  selections.py    each photo's published selection                                  -> Selections, DynamoSelections
  fakes.py         the same four in memory, for unit tests (MemoryStore)
  items.py         what they share: the typed client and DynamoDB's attribute values

Each interface is a typing.Protocol; code that needs one takes it as an argument, so a unit test passes a fake.
"""
