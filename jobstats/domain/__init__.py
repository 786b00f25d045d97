"""jobstats' domain: pure functions and small data types, no HTTP and no templates.

Each module owns one concern (job-id lists, submit lines, graphs, efficiency, advice, cost,
GPU models, pending reasons); jobstats' page modules (services, listing, jobpage, queries...)
compose them for the views and the API.
"""
