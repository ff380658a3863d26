"""Request and answer models of the survey and complaint API (every answer masked)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from callcenter.survey.rules import PROBLEM_CLASSES
from callcenter.web.api import ApiModel

ProblemClass = Literal[PROBLEM_CLASSES]  # type: ignore[valid-type]


class SurveyAnswersIn(ApiModel):
    """The six SA-CS-005 scores, 1–5 each."""

    response_speed: int = Field(ge=1, le=5, description="响应及时性")
    professionalism: int = Field(ge=1, le=5, description="服务专业性")
    attitude: int = Field(ge=1, le=5, description="态度友好度")
    resolution: int = Field(ge=1, le=5, description="问题解决效果")
    overall: int = Field(ge=1, le=5, description="整体体验")
    recommend: int = Field(ge=1, le=5, description="推荐意愿")


class SurveyIn(ApiModel):
    """A phone survey a survey agent entered by hand."""

    answers: SurveyAnswersIn
    comment: str = Field("", max_length=2000, description="客户原话（逐字记录）")
    complaint: bool = Field(False, description="客户投诉（即使评分均高于 3 分也转主管跟进）")
    problem_class: ProblemClass | None = Field(None, description="问题分类；不填则按最低分推定")
    action: str = Field("", max_length=1000, description="建议的跟进措施")


class ComplaintOut(BaseModel):
    id: int
    order_id: int
    order_number: str
    survey_number: str | None
    engineer: str
    customer: str
    problem_class: str
    low_scores: list[str]
    action: str
    status: str
    status_label: str
    owner_id: int | None
    owner: str | None
    opened_at: dt.datetime
    take_by: dt.datetime
    deadline: dt.datetime
    taken_at: dt.datetime | None
    resolved_at: dt.datetime | None
    resolution: str
    version: int
    take_overdue_s: int = Field(description="接手：超过 1 小时时限的秒数（负数：剩余）")
    contact_overdue_s: int = Field(description="联系客户：超过 24 小时时限的秒数（负数：剩余）")


class SurveyOut(BaseModel):
    id: int
    number: str
    order_id: int
    order_number: str
    engineer: str
    channel: str
    channel_label: str
    answered_at: dt.datetime
    scores: dict[str, int]
    average: float
    low_scores: list[str]
    comment: str
    recorded_by: str | None
    job_id: int | None


class SurveyQuestionOut(BaseModel):
    key: str
    label: str


class SurveyOrderOut(BaseModel):
    id: int
    number: str
    status: str
    service_type: str
    product_model: str
    customer: str
    engineer: str
    completed_at: dt.datetime | None
    due_at: dt.datetime | None
    surveyed_at: dt.datetime | None
    version: int


class OrderSurveyOut(BaseModel):
    """The order's SA-CS-005 (``survey`` null until recorded) and its complaint follow-up."""

    order: SurveyOrderOut
    survey: SurveyOut | None
    complaint: ComplaintOut | None
    questions: list[SurveyQuestionOut]
    problem_classes: list[str]


class SurveyDueItemOut(SurveyOrderOut):
    overdue_s: int | None = Field(description="超过 24 小时回访时限的秒数（负数：剩余）")


class SurveyDueOut(BaseModel):
    items: list[SurveyDueItemOut]
    total: int
    page: int
    page_size: int


class SurveyPageQuery(ApiModel):
    page: int = Field(1, ge=1, le=100000)
    page_size: int = Field(50, ge=1, le=200)


class ComplaintsQuery(SurveyPageQuery):
    status: Literal["active", "open", "in_progress", "resolved", "all"] = Field(
        "active", description="active = 待接手 + 跟进中")


class ComplaintsOut(BaseModel):
    items: list[ComplaintOut]
    total: int
    page: int
    page_size: int


class ComplaintOwnerOut(BaseModel):
    id: int
    name: str
    role: str


class ComplaintOwnersOut(BaseModel):
    items: list[ComplaintOwnerOut]


class ComplaintAssignIn(ApiModel):
    owner_id: int = Field(ge=1)
    version: int | None = Field(None, ge=1)
    action: str | None = Field(None, max_length=1000)
    problem_class: ProblemClass | None = None


class ComplaintResolveIn(ApiModel):
    resolution: str = Field(min_length=1, max_length=2000)
    version: int | None = Field(None, ge=1)
    action: str | None = Field(None, max_length=1000)


class SurveyResultsQuery(SurveyPageQuery):
    engineer_id: int | None = Field(None, ge=1)


class SurveyResultsOut(BaseModel):
    items: list[SurveyOut]
    total: int
    page: int
    page_size: int


class SurveyStatsQuery(ApiModel):
    date_from: dt.date | None = Field(None, description="含当日（中心时区）")
    date_to: dt.date | None = Field(None, description="含当日（中心时区）")


class EngineerScoresOut(BaseModel):
    engineer_id: int | None
    engineer: str
    surveys: int
    averages: dict[str, float]
    average: float
    dissatisfied: int
    complaints: int


class EngineerSatisfactionOut(BaseModel):
    items: list[EngineerScoresOut]
    questions: list[SurveyQuestionOut]
