"""Column names of the events DataFrame that flows from the store into mining and retrieval.

Named once here (as microsoft/recommenders does) so no module spells them differently.
``ts`` is tz-aware UTC; ``tz_offset_min`` is the local offset from UTC in minutes at that event,
so local time is ``ts + tz_offset_min``.
"""

EVENT_ID = "event_id"
USER = "user_id"
ITEM = "item_id"
KIND = "kind"
TIME = "ts"
TZ_OFFSET = "tz_offset_min"
LAT = "lat"
LON = "lon"
TEXT = "text"
RATING = "rating"
CATEGORY = "category"
ITEM_NAME = "item_name"

# Read from the store with the events (not part of the ingest format): a feedback event's reaction,
# "accepted" | "clicked" | "rejected" (None for every other kind).
FEEDBACK = "feedback"

EVENT_COLUMNS = [EVENT_ID, USER, ITEM, KIND, TIME, TZ_OFFSET, LAT, LON, TEXT, RATING, CATEGORY, ITEM_NAME]

EVENT_KINDS = ("checkin", "view", "click", "purchase", "rating", "review", "feedback")
