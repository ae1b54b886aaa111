"""The words and colours the calendar shows for its channels, themes and statuses."""

from __future__ import annotations

CHANNEL_LABELS = {
    "email_newsletter": "Email newsletter",
    "linkedin_post": "LinkedIn post",
    "linkedin_message": "LinkedIn message",
    "x": "X",
    "instagram": "Instagram",
    "sms": "SMS",
    "blog": "Blog",
    "event": "Event",
}
THEME_LABELS = {
    "company_news": "Company news",
    "industry_insight": "Industry insight",
    "career_advice": "Career advice",
    "employee_story": "Employee story",
    "job_alert": "Job alert",
}
STATUS_LABELS = {
    "idea": "Idea",
    "draft": "Draft",
    "scheduled": "Scheduled",
    "published": "Published",
}
# Streamlit badge colours; seven colours for eight channels, so the two LinkedIn ones share.
CHANNEL_COLOURS = {
    "email_newsletter": "orange",
    "linkedin_post": "blue",
    "linkedin_message": "blue",
    "x": "gray",
    "instagram": "violet",
    "sms": "green",
    "blog": "primary",
    "event": "red",
}
