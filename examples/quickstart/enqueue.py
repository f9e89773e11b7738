"""Enqueue five jobs: three welcome mails and two thumbnails."""

import transaction

import jobs
from myapp.tasks import send_welcome
from myapp.thumbnails import MakeThumbnailJob

jobs.setup()  # JOBS_CONFIG: load it, register the sources, connect
for user_id in (1, 2, 3):
    send_welcome.delay(user_id)
MakeThumbnailJob.create("photos/cat.jpg")
MakeThumbnailJob.create("photos/dog.jpg")
transaction.commit()  # the jobs exist from here on
print("Enqueued 5 jobs.")
