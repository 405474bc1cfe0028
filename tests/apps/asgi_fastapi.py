"""A FastAPI app (one route with a path parameter, a JSON body and a query parameter)."""

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Item(BaseModel):
    name: str


@app.post("/items/{item_id}")
async def update(item_id: int, item: Item, q: str | None = None):
    return {"id": item_id, "name": item.name, "q": q}
