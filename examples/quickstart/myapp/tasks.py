from jobs import task


@task(section="mail", max_retries=3, retry_delay=60)
def send_welcome(user_id, template="welcome"):
    print("Sending the %s mail to user %d" % (template, user_id))
    return "sent"
