"""The ``chronotope`` console script: a composition root like the API's app factory. Nothing imports it."""
